import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GemmiDriver, OpenBabelDriver } from '../src/engines/cli.js';
import { lossHeader, lossReport, withEngineNotes } from '../src/engines/loss.js';
import { runProcess } from '../src/engines/process.js';
import { engineCan, enginesFor } from '../src/engines/types.js';
import { parseStructure } from '../src/formats/parse.js';

const installed = async (bin: string) =>
  runProcess(bin, ['--version'], { timeoutMs: 20_000, what: bin }).then(
    (r) => r.code === 0 || /Open Babel/.test(r.stdout + r.stderr),
    () => false,
  );
const hasGemmi = await installed('gemmi');
const hasObabel = await installed('obabel');
const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name), 'latin1');

/**
 * What the conversion engines write and refuse, on files molvault accepts: old-style PDB ids in
 * columns 73-80, chain names too long for PDB, gemmi's own mmCIF of a PDB without chain ids, and
 * small-molecule CIFs, which Open Babel reads. Real engines: each test that needs one says so.
 */
describe('conversion engines on files from the wild', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-engines-'));
  });
  afterAll(() => fs.rm(scratch, { recursive: true, force: true }));

  async function convert(driver: GemmiDriver | OpenBabelDriver, name: string, text: string, from: 'pdb' | 'cif', to: 'pdb' | 'cif' | 'sdf') {
    const dir = await fs.mkdtemp(path.join(scratch, 'job-'));
    const input = path.join(dir, name);
    await fs.writeFile(input, text, 'latin1');
    const output = path.join(dir, `output.${to}`);
    const notes = await driver.convert({ input, from, to, output, scratch: dir, timeoutMs: 60_000 });
    return { notes, output: await fs.readFile(output, 'latin1') };
  }

  it.skipIf(!hasGemmi /* skipped when the gemmi CLI is not installed */)(
    '(skipped without the gemmi CLI) converts an old-style PDB with ids in columns 73-80, which gemmi refuses as charges, and says how',
    async () => {
      // As PDB files were written before 1996 (gemmi's test file pdb1gdr.ent): entry id and line number in columns 73-80.
      const residues = ['MET', 'ARG', 'LEU', 'ILE', 'ALA'];
      const lines = residues.map(
        (res, i) =>
          `ATOM  ${String(i + 1).padStart(5)}  CA  ${res}     ${String(i + 1).padStart(1)}    ${(i * 3.8).toFixed(3).padStart(8)}  51.101   6.138  1.00 35.00      1GDR ${String(109 + i).padStart(3)}`,
      );
      const text = `${lines.join('\n')}\nEND\n`;
      const source = await parseStructure(text, 'pdb');
      expect(source.ok).toBe(true);
      const { notes, output } = await convert(new GemmiDriver('test', 'gemmi'), 'old.pdb', text, 'pdb', 'cif');
      expect(notes?.notes.join(' ')).toMatch(/Wrong format for charge.*first 72 columns/);
      const converted = await parseStructure(output, 'cif');
      expect(converted.ok && converted.summary.atoms).toBe(5);
    },
  );

  it.skipIf(!hasGemmi /* skipped when the gemmi CLI is not installed */)(
    '(skipped without the gemmi CLI) writes chain names longer than PDB allows under short names, and the loss report gives the mapping',
    async () => {
      const cif = (await fixture('ngl_1CRN.cif'))
        .split('\n')
        .map((line) => {
          if (!line.startsWith('ATOM') && !line.startsWith('HETATM')) return line;
          const fields = line.trim().split(/\s+/);
          fields[23] = 'LONGCHAIN'; // auth_asym_id
          return fields.join(' ');
        })
        .join('\n');
      const source = await parseStructure(cif, 'cif');
      expect(source.ok).toBe(true);
      const { notes, output } = await convert(new GemmiDriver('test', 'gemmi'), 'long.cif', cif, 'cif', 'pdb');
      expect(notes?.chainNames).toEqual({ LONGCHAIN: 'A' });
      const converted = await parseStructure(output, 'pdb');
      expect(converted.ok).toBe(true);
      if (!source.ok || !converted.ok) return;
      const loss = withEngineNotes(
        lossReport({ format: 'cif', summary: source.summary, chemistry: {} }, { format: 'pdb', summary: converted.summary, chemistry: {} }),
        notes,
      );
      expect(loss.chainNames).toEqual({ LONGCHAIN: 'A' });
      expect(loss.lossy).toBe(true);
      expect(lossHeader(loss)).toContain('chainNames=LONGCHAIN->A');
      expect(loss.kept).toEqual(expect.arrayContaining(['atoms', 'residues']));
    },
  );

  it.skipIf(!hasGemmi /* skipped when the gemmi CLI is not installed */)(
    "(skipped without the gemmi CLI) reads gemmi's own mmCIF of a PDB without chain ids, whose atoms name no entity",
    async () => {
      const pdb = await fixture('ngl_noChainNameTerRecords.pdb');
      const { output } = await convert(new GemmiDriver('test', 'gemmi'), 'in.pdb', pdb, 'pdb', 'cif');
      const converted = await parseStructure(output, 'cif');
      expect(converted.ok, JSON.stringify(converted.ok ? '' : converted.message)).toBe(true);
      if (!converted.ok) return;
      expect(converted.summary.atoms).toBe(67);
      expect(converted.report.warnings.map((w) => w.code)).toContain('entities_inferred');
    },
  );

  it('leaves a small-molecule CIF to Open Babel, which reads it, and never to the mmCIF engines', async () => {
    const core = { format: 'cif' as const, dialect: 'coreCIF' };
    expect(enginesFor(core, 'sdf')).toEqual(['openbabel']);
    expect(engineCan('gemmi', core, 'pdb')).toBe(false);
    expect(engineCan('openbabel', { format: 'cif' }, 'sdf')).toBe(false);
    expect(enginesFor({ format: 'cif', dialect: 'chemical component' }, 'sdf')).toEqual([]);
  });

  it.skipIf(!hasObabel /* skipped when the Open Babel CLI is not installed */)(
    '(skipped without the obabel CLI) converts a small-molecule CIF to SDF with Open Babel',
    async () => {
      const cif = [
        'data_nacl',
        "_chemical_formula_sum 'Cl Na'",
        '_cell_length_a 5.64',
        '_cell_length_b 5.64',
        '_cell_length_c 5.64',
        '_cell_angle_alpha 90',
        '_cell_angle_beta 90',
        '_cell_angle_gamma 90',
        "_symmetry_space_group_name_H-M 'P 1'",
        'loop_',
        '_atom_site_label',
        '_atom_site_type_symbol',
        '_atom_site_fract_x',
        '_atom_site_fract_y',
        '_atom_site_fract_z',
        'Na1 Na 0.0 0.0 0.0',
        'Cl1 Cl 0.5 0.5 0.5',
        '',
      ].join('\n');
      const source = await parseStructure(cif, 'cif');
      expect(source.ok && source.summary.dialect).toBe('coreCIF');
      const { output } = await convert(new OpenBabelDriver('test', 'obabel'), 'nacl.cif', cif, 'cif', 'sdf');
      const converted = await parseStructure(output, 'sdf');
      expect(converted.ok && converted.summary.elements).toEqual({ Na: 1, Cl: 1 });
    },
  );
});
