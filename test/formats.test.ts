import { describe, expect, it } from 'vitest';
import { parseStructure } from '../src/formats/parse.js';
import { sniffFormat } from '../src/formats/sniff.js';

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

const molRecord = (title: string, atoms: string[], bonds: string[], declared = [atoms.length, bonds.length]) =>
  [
    title,
    '  molvault02262612002D',
    '',
    `${String(declared[0]).padStart(3)}${String(declared[1]).padStart(3)}  0  0  0  0  0  0  0  0999 V2000`,
    ...atoms,
    ...bonds,
    'M  END',
    '$$$$',
  ].join('\n');
const sdfAtom = (x: number, element: string) => `${x.toFixed(4).padStart(10)}    0.0000    0.0000 ${element.padEnd(3)} 0  0  0  0  0  0  0  0  0  0  0  0`;
const ethanol = [sdfAtom(0, 'C'), sdfAtom(1.5, 'C'), sdfAtom(2.2, 'O')];
const ethanolBonds = ['  1  2  1  0', '  2  3  1  0'];

describe('checking small-molecule records against their count lines', () => {
  it('summarises a multi-record SDF as a whole: molecules, atoms and bonds of all, the shared formula and weight, the first title as the first record', async () => {
    const text = `${molRecord('ethanol', ethanol, ethanolBonds)}\n${molRecord('ethanol again', ethanol, ethanolBonds)}\n`;
    const outcome = await parseStructure(text, 'sdf');
    expect(outcome).toMatchObject({
      ok: true,
      kind: 'small-molecule',
      summary: { atoms: 6, molecules: 2, bonds: 4, formula: 'C2 O', records: { count: 2 }, firstRecord: { atoms: 3, bonds: 2, title: 'ethanol' } },
    });
    if (outcome.ok) expect(outcome.summary.title).toBeUndefined();
    if (outcome.ok) expect(outcome.summary.molecularWeight).toBeCloseTo(2 * 12.011 + 15.999, 3);
  });

  it('refuses an SDF whose counts line declares more atoms than the block holds, naming the line', async () => {
    const outcome = await parseStructure(`${molRecord('short', ethanol, ethanolBonds, [4, 2])}\n`, 'sdf');
    expect(outcome).toMatchObject({ ok: false, status: 422 });
    if (outcome.ok) return;
    expect(outcome.report.problems[0]).toMatchObject({ code: 'bad_atom_line', line: 8 });
    expect(outcome.message).toMatch(/declares 4 atoms/);
  });

  it('keeps the sound records of a multi-record SDF and warns about the broken one', async () => {
    const text = [molRecord('good', ethanol, ethanolBonds), molRecord('bad', ethanol, ethanolBonds, [3, 3]), molRecord('good', ethanol, ethanolBonds)].join(
      '\n',
    );
    const outcome = await parseStructure(text, 'sdf');
    expect(outcome).toMatchObject({ ok: true, summary: { molecules: 2 } });
    if (outcome.ok) expect(outcome.report.warnings).toEqual([expect.objectContaining({ code: 'record_skipped_count_mismatch', line: 21 })]);
  });

  it('reads a V3000 molfile, continuation lines included', async () => {
    const text = [
      'v3000',
      '  molvault02262612003D',
      '',
      '  0  0  0     0  0            999 V3000',
      'M  V30 BEGIN CTAB',
      'M  V30 COUNTS 2 1 0 0 0',
      'M  V30 BEGIN ATOM',
      'M  V30 1 C 0 0 0 0',
      'M  V30 2 O 1.2 0 -',
      'M  V30 0 0',
      'M  V30 END ATOM',
      'M  V30 BEGIN BOND',
      'M  V30 1 2 1 2',
      'M  V30 END BOND',
      'M  V30 END CTAB',
      'M  END',
      '',
    ].join('\n');
    expect(await parseStructure(text, 'mol')).toMatchObject({ ok: true, summary: { atoms: 2, bonds: 1, formula: 'C O' } });
  });

  it('refuses a MOL2 molecule whose ATOM section is missing', async () => {
    const text = '@<TRIPOS>MOLECULE\nempty\n 12 0 1 0 0\nSMALL\nNO_CHARGES\n\n';
    const outcome = await parseStructure(text, 'mol2');
    expect(outcome).toMatchObject({ ok: false, status: 422 });
    if (!outcome.ok) expect(outcome.report.problems[0]).toMatchObject({ code: 'count_mismatch', line: 3 });
  });

  it('refuses an XYZ frame with fewer atoms than declared, and extended XYZ with a bad Properties= column', async () => {
    const short = await parseStructure('3\nwater\nO 0 0 0\nH 0.76 0.59 0\n', 'xyz');
    expect(short).toMatchObject({ ok: false, status: 422 });
    if (!short.ok) expect(short.message).toMatch(/declares 3 atoms, but the file ends after 2/);
    const extended = await parseStructure('1\nProperties=species:S:1:pos:R:3:charge:R:1\nH 1.0 4.0 2.3 high\n', 'xyz');
    expect(extended).toMatchObject({ ok: false, status: 422 });
    if (!extended.ok) expect(extended.report.problems[0]).toMatchObject({ code: 'bad_extended_xyz', line: 3 });
  });

  it('reads a multi-frame XYZ as models and warns nothing', async () => {
    const frame = (z: number) => `3\nwater z=${z}\nO 0 0 ${z}\nH 0.76 0.59 ${z}\nH -0.76 0.59 ${z}\n`;
    const outcome = await parseStructure(frame(0) + frame(1) + frame(2), 'xyz');
    expect(outcome).toMatchObject({
      ok: true,
      summary: { atoms: 9, models: 3, formula: 'H2 O', records: { count: 3 }, firstRecord: { atoms: 3, title: 'water z=0' } },
      report: { warnings: [] },
    });
  });
});

describe('detecting formats by content', () => {
  it('recognises each format whatever the name, and says why when it cannot', () => {
    const enc = (t: string) => new TextEncoder().encode(t);
    expect(sniffFormat(enc(`${molRecord('ethanol', ethanol, ethanolBonds)}\n`))).toMatchObject({ format: 'sdf' });
    expect(sniffFormat(enc('2244\n  -OEChem-02261816162D\n\n 21aaa\n'))).toMatchObject({ format: 'mol' });
    expect(sniffFormat(enc('1\nLattice="1 0 0 0 1 0 0 0 1" Properties=species:S:1:pos:R:3\nH 0 0 0\n'))).toMatchObject({ format: 'xyz' });
    expect(sniffFormat(enc('@<TRIPOS>MOLECULE\nx\n'))).toMatchObject({ format: 'mol2' });
    expect(sniffFormat(enc('\r\n\r\n\r\n'))).toMatchObject({ format: undefined, reason: 'The file holds only blank lines.' });
  });
});
