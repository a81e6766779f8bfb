import { describe, expect, it } from 'vitest';
import { lossHeader, lossReport } from '../src/engines/loss.js';
import { parseStructure } from '../src/formats/parse.js';
import type { Format, StructureSummary } from '../src/formats/types.js';
import { buildSearchDocument } from '../src/search/document.js';

/** A V2000 record of a linear alkane-like chain: `carbons` C atoms and `oxygens` O atoms, bonded in a row. */
function molRecord(title: string, carbons: number, oxygens = 0): string {
  const elements = [...Array(carbons).fill('C'), ...Array(oxygens).fill('O')];
  const atoms = elements.map((e, i) => `${(i * 1.5).toFixed(4).padStart(10)}    0.0000    0.0000 ${e.padEnd(3)} 0  0  0  0  0  0  0  0  0  0  0  0`);
  const bonds = elements.slice(1).map((_, i) => `${String(i + 1).padStart(3)}${String(i + 2).padStart(3)}  1  0`);
  return [
    title,
    '  molvault02262612002D',
    '',
    `${String(atoms.length).padStart(3)}${String(bonds.length).padStart(3)}  0  0  0  0  0  0  0  0999 V2000`,
    ...atoms,
    ...bonds,
    'M  END',
    '$$$$',
  ].join('\n');
}

function mol2Molecule(name: string, elements: string[]): string {
  const atoms = elements.map((e, i) => `${i + 1} ${e}${i + 1} ${(i * 1.5).toFixed(4)} 0.0000 0.0000 ${e}.3 1 MOL 0.0000`);
  const bonds = elements.slice(1).map((_, i) => `${i + 1} ${i + 1} ${i + 2} 1`);
  return [
    '@<TRIPOS>MOLECULE',
    name,
    `${atoms.length} ${bonds.length} 1 0 0`,
    'SMALL',
    'NO_CHARGES',
    '',
    '@<TRIPOS>ATOM',
    ...atoms,
    '@<TRIPOS>BOND',
    ...bonds,
    '',
  ].join('\n');
}

const xyzFrame = (comment: string, elements: string[], shift: number) =>
  [String(elements.length), comment, ...elements.map((e, i) => `${e} ${(i * 1.1 + shift).toFixed(3)} 0.000 0.000`)].join('\n');

async function summaryOf(text: string, format: Format): Promise<StructureSummary> {
  const outcome = await parseStructure(text, format);
  expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
  if (!outcome.ok) throw new Error('refused');
  return outcome.summary;
}

describe('summaries of multi-record files describe the whole file', () => {
  it('an SDF library: records, atoms in all, the atom range per record, distinct formulas and the first record labelled as such', async () => {
    // 30 records, C1 … C30: 465 atoms in all, 30 distinct formulas.
    const text = `${Array.from({ length: 30 }, (_, i) => molRecord(`alkane ${i + 1}`, i + 1)).join('\n')}\n`;
    const summary = await summaryOf(text, 'sdf');
    expect(summary.atoms).toBe(465);
    expect(summary.molecules).toBe(30);
    expect(summary.records).toEqual({
      count: 30,
      totalAtoms: 465,
      atomsPerRecord: { min: 1, max: 30 },
      distinctFormulas: 30,
      formulas: Array.from({ length: 20 }, (_, i) => (i === 0 ? 'C' : `C${i + 1}`)),
    });
    expect(summary.firstRecord).toMatchObject({ index: 1, atoms: 1, formula: 'C', title: 'alkane 1', bonds: 0 });
    expect(summary.firstRecord?.molecularWeight).toBeCloseTo(12.011, 3);
    expect(summary.elements).toEqual({ C: 465 });
    expect(summary.bonds).toBe(435);
    // Several formulas: none of them is the file's.
    expect(summary.formula).toBeUndefined();
    expect(summary.molecularWeight).toBeUndefined();
    expect(summary.title).toBeUndefined();

    // The search document and the presenters read the same summary: the file's atoms, every formula listed.
    const doc = buildSearchDocument(
      { id: 'structure', owner: 'owner', project: 'project', name: 'library', tags: [], metadata: {}, createdAt: new Date(), updatedAt: new Date() } as never,
      { summary, format: 'sdf', filename: 'library.sdf' } as never,
    );
    expect(doc.atoms).toBe(465);
    expect(doc.formula).toContain('C20');
    expect(doc.title).toBe('alkane 1');
  });

  it('a MOL2 of several molecules and an XYZ trajectory', async () => {
    const mol2 = await summaryOf(
      [mol2Molecule('one', ['C', 'C', 'O']), mol2Molecule('two', ['C', 'O']), mol2Molecule('three', ['C', 'C', 'O'])].join(''),
      'mol2',
    );
    expect(mol2).toMatchObject({
      atoms: 8,
      molecules: 3,
      bonds: 5,
      records: { count: 3, totalAtoms: 8, atomsPerRecord: { min: 2, max: 3 }, distinctFormulas: 2, formulas: ['C2 O', 'C O'] },
      firstRecord: { index: 1, atoms: 3, formula: 'C2 O', bonds: 2, title: 'one' },
    });

    const water = ['O', 'H', 'H'];
    const xyz = await summaryOf(`${Array.from({ length: 5 }, (_, i) => xyzFrame(`frame ${i}`, water, i * 0.01)).join('\n')}\n`, 'xyz');
    expect(xyz).toMatchObject({
      atoms: 15,
      models: 5,
      formula: 'H2 O',
      records: { count: 5, totalAtoms: 15, atomsPerRecord: { min: 3, max: 3 }, distinctFormulas: 1, formulas: ['H2 O'] },
      firstRecord: { index: 1, atoms: 3, formula: 'H2 O', title: 'frame 0' },
    });
    expect(xyz.molecularWeight).toBeCloseTo(18.015, 2);

    // One record: the summary is the record's, as before.
    const single = await summaryOf(`${molRecord('ethanol-ish', 2, 1)}\n`, 'sdf');
    expect(single).toMatchObject({ atoms: 3, formula: 'C2 O', title: 'ethanol-ish', bonds: 2 });
    expect(single.records).toBeUndefined();
    expect(single.firstRecord).toBeUndefined();
  });
});

describe('loss reports count records, not models', () => {
  it('a 5-frame XYZ and the 5-record SDF made of it hold the same records; 10 SDF records and a 10-frame XYZ too', async () => {
    const frames = Array.from({ length: 5 }, (_, i) => xyzFrame(`frame ${i}`, ['C', 'O'], i * 0.1));
    const xyz = await summaryOf(`${frames.join('\n')}\n`, 'xyz');
    const sdf = await summaryOf(`${Array.from({ length: 5 }, (_, i) => molRecord(`frame ${i}`, 1, 1)).join('\n')}\n`, 'sdf');
    const none = {};
    const toSdf = lossReport({ format: 'xyz', summary: xyz, chemistry: none }, { format: 'sdf', summary: sdf, chemistry: none });
    expect(toSdf.kept).toEqual(expect.arrayContaining(['records', 'atoms', 'formula']));
    expect(lossHeader(toSdf)).not.toMatch(/models|records/);

    const library = await summaryOf(`${Array.from({ length: 10 }, (_, i) => molRecord(`m${i}`, 2)).join('\n')}\n`, 'sdf');
    const trajectory = await summaryOf(`${Array.from({ length: 10 }, (_, i) => xyzFrame(`m${i}`, ['C', 'C'], i)).join('\n')}\n`, 'xyz');
    const toXyz = lossReport({ format: 'sdf', summary: library, chemistry: none }, { format: 'xyz', summary: trajectory, chemistry: none });
    expect(toXyz.kept).toEqual(expect.arrayContaining(['records', 'atoms', 'formula']));
    expect(lossHeader(toXyz)).toBe('none');

    // A record really lost is reported as records, by number.
    const fewer = await summaryOf(`${frames.slice(0, 3).join('\n')}\n`, 'xyz');
    const lost = lossReport({ format: 'sdf', summary: sdf, chemistry: none }, { format: 'xyz', summary: fewer, chemistry: none });
    expect(lossHeader(lost)).toContain('records=5->3');
  });
});
