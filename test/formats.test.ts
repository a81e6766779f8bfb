import { describe, expect, it } from 'vitest';
import { parseStructure } from '../src/formats/parse.js';

const atom = (serial: number, chain: string, residue: number, x: number) =>
  `ATOM  ${String(serial).padStart(5)}  CA  ALA${chain.padStart(2)}${String(residue).padStart(4)}    ${x.toFixed(3).padStart(8)}   0.000   0.000  1.00 20.00           C  `;

describe('reading PDB files the way their writers meant them', () => {
  it('counts only the first model when atoms follow ENDMDL without a MODEL record', async () => {
    const text = ['MODEL', atom(1, 'A', 1, 0), atom(2, 'A', 2, 3.8), 'ENDMDL', atom(3, 'A', 1, 0), atom(4, 'A', 2, 3.8), atom(5, 'A', 3, 7.6), 'END', ''].join(
      '\n',
    );
    const outcome = await parseStructure(text, 'pdb');
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.summary).toMatchObject({ atoms: 2, models: 2 });
    expect(outcome.report.warnings.map((w) => w.code)).toEqual(['model_without_number', 'atoms_outside_model']);
    expect(outcome.report.warnings[1].line).toBe(5);
  });

  it('warns about 2-character chain ids and reads the file without its SEQRES records', async () => {
    const seqres = 'SEQRES   1 AB    3  ALA ALA ALA                                                  ';
    const text = [seqres, atom(1, 'AB', 1, 0), atom(2, 'AB', 2, 3.8), atom(3, 'CD', 1, 10), 'END', ''].join('\n');
    const outcome = await parseStructure(text, 'pdb');
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.summary.atoms).toBe(3);
    expect(outcome.report.warnings.map((w) => w.code)).toContain('wide_chain_ids');
  });

  it('turns a reader exception into a rejection with a reason, never a crash', async () => {
    const outcome = await parseStructure('data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1\n', 'cif');
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.status).toBe(422);
    expect(outcome.message).toMatch(/mmCIF/);
  });
});
