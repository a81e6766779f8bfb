import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { elementFromLabel, formulaSumElements } from '../src/formats/cifElements.js';
import { parseStructure } from '../src/formats/parse.js';
import { CORPUS, hasCorpus } from './helpers/corpus.js';

/** A small-molecule (core) CIF with fractional coordinates, one site per label, no type symbols unless given. */
function coreCif(labels: string[], options: { formula?: string; typeSymbols?: string[] } = {}): string {
  const rows = labels.map((label, i) => {
    const type = options.typeSymbols ? ` ${options.typeSymbols[i]}` : '';
    return `${label}${type} ${(0.05 + i * 0.07).toFixed(4)} ${(0.1 + i * 0.03).toFixed(4)} ${(0.2 + i * 0.05).toFixed(4)} 1.0`;
  });
  return [
    'data_test',
    ...(options.formula ? [`_chemical_formula_sum '${options.formula}'`] : []),
    '_cell_length_a 10.0',
    '_cell_length_b 11.0',
    '_cell_length_c 12.0',
    '_cell_angle_alpha 90',
    '_cell_angle_beta 90',
    '_cell_angle_gamma 90',
    "_symmetry_space_group_name_H-M 'P 1'",
    'loop_',
    '_atom_site_label',
    ...(options.typeSymbols ? ['_atom_site_type_symbol'] : []),
    '_atom_site_fract_x',
    '_atom_site_fract_y',
    '_atom_site_fract_z',
    '_atom_site_occupancy',
    ...rows,
    '',
  ].join('\n');
}

async function elementsOf(text: string) {
  const outcome = await parseStructure(text, 'cif');
  expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
  if (!outcome.ok) throw new Error('refused');
  return { elements: outcome.summary.elements, warnings: outcome.report.warnings, summary: outcome.summary };
}

describe('elements of small-molecule CIFs without _atom_site_type_symbol', () => {
  const twoLetter = ['Ca', 'Cd', 'Ti', 'Bi', 'Se', 'Sm', 'Pr', 'Ir', 'Al', 'Sb'];

  it('reads two-letter elements from labels like crystallographic software (Ca1 is calcium, not carbon)', async () => {
    const { elements, warnings } = await elementsOf(coreCif([...twoLetter.map((e) => `${e}1`), 'C1A', 'O1W', 'H12B', 'Cl2']));
    expect(elements).toEqual({ Ca: 1, Cd: 1, Ti: 1, Bi: 1, Se: 1, Sm: 1, Pr: 1, Ir: 1, Al: 1, Sb: 1, C: 1, O: 1, H: 1, Cl: 1 });
    const guessed = warnings.find((w) => w.code === 'elements_from_labels');
    expect(guessed?.message).toMatch(/no _atom_site_type_symbol/);
    expect(guessed?.message).toContain('Ca1 → Ca');
    expect(warnings.map((w) => w.code)).not.toContain('missing_elements');
  });

  it('lets _chemical_formula_sum decide labels in capitals, and says when the formula disagrees', async () => {
    // CA1 in a calcium-free file is a carbon; CL1 with chlorine in the formula is chlorine.
    const decided = await elementsOf(coreCif(['CA1', 'CL1', 'N1'], { formula: 'C Cl N' }));
    expect(decided.elements).toEqual({ C: 1, Cl: 1, N: 1 });
    expect(decided.warnings.map((w) => w.code)).not.toContain('elements_formula_mismatch');

    const disagreeing = await elementsOf(coreCif(['Ca1', 'O1'], { formula: 'Ca O3 Ti' }));
    expect(disagreeing.elements).toEqual({ Ca: 1, O: 1 });
    const mismatch = disagreeing.warnings.find((w) => w.code === 'elements_formula_mismatch');
    expect(mismatch?.message).toMatch(/no site was read as Ti/);

    const open = await elementsOf(coreCif(['CA1', 'O1']));
    expect(open.elements).toEqual({ Ca: 1, O: 1 });
    expect(open.warnings.map((w) => w.code)).toContain('element_label_ambiguous');
  });

  it('strips digits, charges and suffixes, and leaves type symbols alone when the file has them', async () => {
    expect(elementFromLabel('Fe2+').element).toBe('Fe');
    expect(elementFromLabel('O2-').element).toBe('O');
    expect(elementFromLabel('Ow').element).toBe('O');
    expect(elementFromLabel('Q1').element).toBe('');
    expect([...(formulaSumElements('Cl3 Cs In0.07 Sn0.9') ?? [])]).toEqual(['Cl', 'Cs', 'In', 'Sn']);
    const typed = await elementsOf(coreCif(['X1', 'X2'], { typeSymbols: ['Ca', 'Ti'] }));
    expect(typed.elements).toEqual({ Ca: 1, Ti: 1 });
    expect(typed.warnings.map((w) => w.code)).not.toContain('elements_from_labels');
  });

  /** Removes the `_atom_site_type_symbol` column from the atom_site loop of a core CIF. */
  function withoutTypeSymbols(text: string): string {
    const lines = text.split(/\r?\n/);
    const out: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() !== 'loop_') {
        out.push(lines[i]);
        continue;
      }
      const names: string[] = [];
      let j = i + 1;
      while (j < lines.length && lines[j].trim().startsWith('_')) names.push(lines[j++].trim());
      const column = names.indexOf('_atom_site_type_symbol');
      if (column < 0) {
        out.push(lines[i]);
        continue;
      }
      out.push('loop_', ...names.filter((_, k) => k !== column));
      for (; j < lines.length; j++) {
        const line = lines[j].trim();
        if (line === '' || line.startsWith('_') || line === 'loop_' || line.startsWith('data_') || line.startsWith('#')) break;
        const tokens = line.split(/\s+/);
        expect(tokens.length, `one site per line in ${line}`).toBe(names.length);
        out.push(tokens.filter((_, k) => k !== column).join(' '));
      }
      i = j - 1;
    }
    return out.join('\n');
  }

  it.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
    '(skipped without ../shared/corpus) gives the elements the type symbols give, for every small-molecule CIF of the corpus',
    async () => {
      const files = [
        'gemmi_1011031.cif',
        'gemmi_4003024.cif',
        'chemfiles_1544173.cif',
        'obabel_1519159.cif',
        'obabel_test01.cif',
        'ngl_Fe2O3_mp-715572_conventional_standard.cif',
        'chemfiles_Zr-UiO-66-pressure.cif',
      ];
      for (const name of files) {
        const text = await fs.readFile(path.join(CORPUS, 'cif', name), 'latin1');
        const typed = await elementsOf(text);
        const stripped = withoutTypeSymbols(text);
        expect(stripped).not.toContain('_atom_site_type_symbol');
        const guessed = await elementsOf(stripped);
        expect(guessed.elements, name).toEqual(typed.elements);
        expect(
          guessed.warnings.map((w) => w.code),
          name,
        ).toContain('elements_from_labels');
      }
    },
  );
});
