import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffStructures } from '../src/formats/diff.js';
import { expireDiffCache } from '../src/services/versions/diffs.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const CORPUS = path.resolve(import.meta.dirname, '../../shared/corpus');
const hasCorpus = existsSync(CORPUS);
const fixtures = path.join(import.meta.dirname, 'fixtures');

/** Hemoglobin (4HHB: chains A-D, a HEM in each, waters): from the corpus when present, else the same file from test/fixtures. */
async function hemoglobin(): Promise<string> {
  if (hasCorpus) return fs.readFile(path.join(CORPUS, 'pdb/chemfiles_4hhb.pdb'), 'latin1');
  return gunzipSync(await fs.readFile(path.join(fixtures, 'chemfiles_4hhb.pdb.gz'))).toString('latin1');
}

const isAtom = (line: string) => line.startsWith('ATOM  ') || line.startsWith('HETATM');
const chainOf = (line: string) => line[21];
const residueName = (line: string) => line.slice(17, 20).trim();
const residueNumber = (line: string) => Number(line.slice(22, 26));
const atomName = (line: string) => line.slice(12, 16).trim();
const atomLines = (pdb: string) => pdb.split('\n').filter(isAtom);
const WATER = new Set(['HOH', 'WAT']);

/** Drops atom (and ANISOU/TER) records for which `drop` says yes. */
function withoutAtoms(pdb: string, drop: (line: string) => boolean): string {
  return pdb
    .split('\n')
    .filter((line) => !((isAtom(line) || line.startsWith('ANISOU') || line.startsWith('TER')) && drop(line)))
    .join('\n');
}

/** Moves every atom by an integer vector: three-decimal coordinates stay exact. */
function translated(pdb: string, [dx, dy, dz]: [number, number, number]): string {
  const field = (value: number) => value.toFixed(3).padStart(8);
  return pdb
    .split('\n')
    .map((line) => {
      if (!isAtom(line)) return line;
      const x = Number(line.slice(30, 38)) + dx;
      const y = Number(line.slice(38, 46)) + dy;
      const z = Number(line.slice(46, 54)) + dz;
      return `${line.slice(0, 30)}${field(x)}${field(y)}${field(z)}${line.slice(54)}`;
    })
    .join('\n');
}

describe('structure-aware diff between versions', () => {
  let stack: Stack;
  let api: Client;
  let projectId: string;
  let original: string;

  beforeAll(async () => {
    stack = await startStack();
    const user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'diffs' })).body.id;
    original = await hemoglobin();
  });
  afterAll(() => stack?.stop());

  /** A structure whose version 1 is `first` and version 2 is `second`. */
  async function twoVersions(first: { name: string; content: string }, second: { name: string; content: string }) {
    const created = await api.upload(`/v1/projects/${projectId}/structures`, first, {}, { prefer: 'wait=30' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.structure.id as string;
    const next = await api.upload(`/v1/structures/${id}/versions`, second, { message: 'edited' }, { prefer: 'wait=30' });
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    return id;
  }

  async function diff(id: string, query = 'from=1&to=2') {
    const response = await api.get(`/v1/structures/${id}/diff?${query}`, { prefer: 'wait=60' });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  it('sees a removed chain: its chain, residues, ligand and atoms, and nothing moved', async () => {
    const edited = withoutAtoms(original, (line) => chainOf(line) === 'D');
    const id = await twoVersions({ name: '4hhb.pdb', content: original }, { name: '4hhb-no-D.pdb', content: edited });
    const result = await diff(id);
    const chainD = atomLines(original).filter((l) => chainOf(l) === 'D');
    const residuesD = new Set(chainD.filter((l) => !WATER.has(residueName(l))).map((l) => residueNumber(l)));
    expect(result.structural.chains).toMatchObject({ from: 4, to: 3, added: [], removed: ['D'] });
    expect(result.structural.atoms.removed.count).toBe(chainD.length);
    expect(result.structural.atoms.added.count).toBe(0);
    expect(result.structural.atoms.matched).toBe(atomLines(original).length - chainD.length);
    expect(result.structural.residues.removed.count).toBe(residuesD.size);
    const ligandsD = new Set(chainD.filter((l) => l.startsWith('HETATM') && !WATER.has(residueName(l))).map((l) => `${residueName(l)} ${residueNumber(l)}`));
    expect(ligandsD).toContain('HEM 148');
    expect(new Set(result.structural.ligands.removed.items.map((r: { name: string; number: number; chain: string }) => `${r.name} ${r.number}`))).toEqual(
      ligandsD,
    );
    expect(result.structural.ligands.removed.items.every((r: { chain: string }) => r.chain === 'D')).toBe(true);
    expect(result.structural.atoms.moved.count).toBe(0);
    expect(result.structural.rmsd).toBe(0);
    expect(result.structural.structurallyIdentical).toBe(false);
    expect(result.changes.summary.chains).toEqual({ from: 4, to: 3 });
    expect(result.changes.version.filename).toEqual({ from: '4hhb.pdb', to: '4hhb-no-D.pdb' });
  });

  it('sees a removed ligand and only that', async () => {
    const heme = (line: string) => chainOf(line) === 'A' && residueName(line) === 'HEM';
    const edited = withoutAtoms(original, heme);
    const id = await twoVersions({ name: '4hhb.pdb', content: original }, { name: '4hhb-no-heme.pdb', content: edited });
    const result = await diff(id);
    expect(result.structural.ligands.removed.items).toEqual([{ chain: 'A', number: 142, insertionCode: '', name: 'HEM' }]);
    expect(result.structural.ligands.added.count).toBe(0);
    expect(result.structural.residues.removed.items).toEqual([{ chain: 'A', number: 142, insertionCode: '', name: 'HEM' }]);
    expect(result.structural.atoms.removed.count).toBe(atomLines(original).filter(heme).length);
    expect(result.structural.atoms.removed.items.every((a: { residueName: string }) => a.residueName === 'HEM')).toBe(true);
    expect(result.structural.chains.removed).toEqual([]);
    expect(result.structural.rmsd).toBe(0);
  });

  it('measures a rigid move by a known vector (RMSD is its length); superposed RMSD ignores moves and turns', async () => {
    const edited = translated(original, [1, 2, 2]);
    const id = await twoVersions({ name: '4hhb.pdb', content: original }, { name: '4hhb-moved.pdb', content: edited });
    const result = await diff(id);
    const atoms = atomLines(original).length;
    expect(result.structural.atoms.matched).toBe(atoms);
    expect(result.structural.rmsd).toBeCloseTo(3, 3);
    expect(result.structural.maxDisplacement).toBeCloseTo(3, 3);
    expect(result.structural.atoms.moved.count).toBe(atoms);
    expect(result.structural.atoms.moved.items).toHaveLength(100);
    expect(result.structural.atoms.moved.truncated).toBe(true);
    const first = result.structural.atoms.moved.items[0];
    expect(first).toMatchObject({ chain: 'A', residue: 1, atom: 'N', distance: 3 });
    expect(first.to.map((v: number, i: number) => v - first.from[i]).map((v: number) => Math.round(v * 1000) / 1000)).toEqual([1, 2, 2]);
    expect(result.structural.atoms.added.count + result.structural.atoms.removed.count).toBe(0);
    expect(result.structural.bfactors.count).toBe(0);
    expect(result.structural.rmsdSuperposed).toBe(0); // a rigid move changes no shape

    // Turned a quarter around z, (x, y, z) → (−y, x, z): far apart as stored, identical in shape.
    const turned = original
      .split('\n')
      .map((line) => {
        if (!isAtom(line)) return line;
        const x = Number(line.slice(30, 38));
        const y = Number(line.slice(38, 46));
        return `${line.slice(0, 30)}${(-y).toFixed(3).padStart(8)}${x.toFixed(3).padStart(8)}${line.slice(46)}`;
      })
      .join('\n');
    const next = await api.upload(`/v1/structures/${id}/versions`, { name: '4hhb-turned.pdb', content: turned }, {}, { prefer: 'wait=30' });
    expect(next.status).toBe(201);
    const rotation = await diff(id, 'from=1&to=3');
    expect(rotation.structural.rmsd).toBeGreaterThan(10);
    expect(rotation.structural.rmsdSuperposed).toBeCloseTo(0, 3);
  });

  it('sees a point mutation (VAL A1 → ALA: the residue renamed, CG1 and CG2 gone) and B-factor changes', async () => {
    const edited = original
      .split('\n')
      .filter((line) => !(isAtom(line) && chainOf(line) === 'A' && residueNumber(line) === 1 && ['CG1', 'CG2'].includes(atomName(line))))
      .map((line) => (isAtom(line) && chainOf(line) === 'A' && residueNumber(line) === 1 ? `${line.slice(0, 17)}ALA${line.slice(20)}` : line))
      // B-factor of chain B residue 2 raised by 5 Å²
      .map((line) =>
        isAtom(line) && chainOf(line) === 'B' && residueNumber(line) === 2
          ? `${line.slice(0, 60)}${(Number(line.slice(60, 66)) + 5).toFixed(2).padStart(6)}${line.slice(66)}`
          : line,
      )
      .join('\n');
    const id = await twoVersions({ name: '4hhb.pdb', content: original }, { name: '4hhb-V1A.pdb', content: edited });
    const result = await diff(id);
    expect(result.structural.residues.mutated.items).toEqual([{ chain: 'A', number: 1, insertionCode: '', name: 'VAL', from: 'VAL', to: 'ALA' }]);
    expect(result.structural.atoms.removed.items.map((a: { atom: string }) => a.atom).sort()).toEqual(['CG1', 'CG2']);
    expect(result.structural.residues.added.count + result.structural.residues.removed.count).toBe(0);
    const b2 = atomLines(original).filter((l) => chainOf(l) === 'B' && residueNumber(l) === 2);
    expect(result.structural.bfactors.count).toBe(b2.length);
    expect(result.structural.bfactors.items.every((a: { from: number; to: number }) => Math.abs(a.to - a.from - 5) < 1e-6)).toBe(true);
    expect(result.structural.rmsd).toBe(0);
  });

  const pdbVersusCif = hasCorpus
    ? [
        ['pdb/chemfiles_4hhb.pdb', 'cif/chemfiles_4hhb.cif'],
        ['pdb/ngl_1crn.pdb', 'cif/ngl_1CRN.cif'],
        ['pdb/biopython_2XHE.pdb', 'cif/biopython_2XHE.cif'],
      ].map(([a, b]) => [path.join(CORPUS, a), path.join(CORPUS, b)])
    : [[path.join(fixtures, 'ngl_1crn.pdb'), path.join(fixtures, 'ngl_1CRN.cif')]];

  it(`finds no structural difference between the PDB and mmCIF files of the same entry (${hasCorpus ? 'corpus' : 'fixtures; the corpus is absent'})`, async () => {
    for (const [pdbPath, cifPath] of pdbVersusCif) {
      const id = await twoVersions(
        { name: path.basename(pdbPath), content: await fs.readFile(pdbPath, 'latin1') },
        { name: path.basename(cifPath), content: await fs.readFile(cifPath, 'latin1') },
      );
      const result = await diff(id);
      expect(result.from.format).toBe('pdb');
      expect(result.to.format).toBe('cif');
      expect(result.structural.structurallyIdentical, pdbPath).toBe(true);
      expect(result.structural.rmsd).toBe(0);
      expect(result.structural.atoms.matched).toBe(result.structural.atoms.from);
      expect(result.structural.atoms.from).toBe(result.structural.atoms.to);
      expect(result.changes.version.format).toEqual({ from: 'pdb', to: 'cif' });
    }
  });

  it('answers 202 with a job to poll, then serves the cached diff; refuses missing versions and strangers', async () => {
    const edited = translated(original, [0, 0, 1]);
    const id = await twoVersions({ name: '4hhb.pdb', content: original }, { name: '4hhb-up.pdb', content: edited });
    const first = await api.get(`/v1/structures/${id}/diff?moveThreshold=0.5`);
    if (first.status === 202) {
      expect(first.headers.get('location')).toBe(`/v1/jobs/${first.body.job.id}`);
      await expect.poll(async () => (await api.get(`/v1/jobs/${first.body.job.id}`)).body.state, { timeout: 30_000 }).toBe('completed');
    } else {
      expect(first.status).toBe(200); // computed between the enqueue and the answer: allowed, and still cached below
    }
    const cached = await api.get(`/v1/structures/${id}/diff?moveThreshold=0.5`);
    expect(cached.status).toBe(200);
    expect(cached.body.from.number).toBe(1); // default: previous against current
    expect(cached.body.to.number).toBe(2);
    expect(cached.body.structural.rmsd).toBeCloseTo(1, 3);
    const [row] = await stack.ctx.orm.em
      .fork()
      .execute<{ n: string }[]>('select count(*) as n from version_diffs where from_blob_sha256 = ?', [cached.body.from.sha256]);
    expect(Number(row.n)).toBeGreaterThanOrEqual(1);

    // Expired from the cache: the finished job is not mistaken for an answer; the diff is computed again.
    expect(await expireDiffCache(stack.ctx.orm.em.fork(), 1, new Date(Date.now() + 2 * 24 * 3600 * 1000))).toBeGreaterThanOrEqual(1);
    const recomputed = await api.get(`/v1/structures/${id}/diff?moveThreshold=0.5`, { prefer: 'wait=60' });
    expect(recomputed.status).toBe(200);
    expect(recomputed.body.structural.rmsd).toBeCloseTo(1, 3);

    expect((await api.get(`/v1/structures/${id}/diff?from=1&to=9`)).status).toBe(404);
    const only = await twoVersions({ name: 'a.pdb', content: original }, { name: 'b.pdb', content: original });
    expect((await api.get(`/v1/structures/${only}/diff?to=1`)).body.error.code).toBe('no_earlier_version');
    const same = await diff(only);
    expect(same.identicalBytes).toBe(true);
    expect(same.structural.structurallyIdentical).toBe(true);
    const other = client(stack.url, (await userFactory(stack.ctx)).token);
    expect((await other.get(`/v1/structures/${id}/diff`)).status).toBe(404);
  });
});

describe('diff of small molecules across formats', () => {
  const atoms: [string, number, number, number][] = [
    ['C', 1.069, -0.0542, 0.0578],
    ['C', 2.5833, -0.0614, 0.057],
    ['O', 3.0649, -1.088, -0.7976],
    ['H', 0.6842, 0.739, 0.7048],
    ['H', 0.677, -1.015, 0.4072],
    ['H', 0.6835, 0.0977, -0.9558],
    ['H', 2.9747, -0.2306, 1.0648],
    ['H', 2.9703, 0.8947, -0.3072],
    ['H', 2.7254, -1.9342, -0.4599],
  ];
  const bonds = [
    [1, 2],
    [1, 4],
    [1, 5],
    [1, 6],
    [2, 3],
    [2, 7],
    [2, 8],
    [3, 9],
  ];
  const coordinate = (v: number, width: number) => v.toFixed(4).padStart(width);
  /** Ethanol as an SDF (V2000) record, moved by `shift` Å along x. */
  const sdf = (shift = 0) =>
    [
      'ethanol',
      '  molvault-test',
      '',
      `${String(atoms.length).padStart(3)}${String(bonds.length).padStart(3)}  0  0  0  0  0  0  0  0999 V2000`,
      ...atoms.map(
        ([el, x, y, z]) => `${coordinate(x + shift, 10)}${coordinate(y, 10)}${coordinate(z, 10)} ${el.padEnd(3)} 0  0  0  0  0  0  0  0  0  0  0  0`,
      ),
      ...bonds.map(([a, b]) => `${String(a).padStart(3)}${String(b).padStart(3)}  1  0  0  0  0`),
      'M  END',
      '$$$$',
      '',
    ].join('\n');
  /** The same molecule as MOL2, with the placeholder residue name Open Babel writes (UNL1). */
  const mol2 = [
    '@<TRIPOS>MOLECULE',
    'ethanol',
    ` ${atoms.length} ${bonds.length} 0 0 0`,
    'SMALL',
    'NO_CHARGES',
    '',
    '@<TRIPOS>ATOM',
    ...atoms.map(
      ([el, x, y, z], i) =>
        `${String(i + 1).padStart(7)} ${el.padEnd(4)} ${coordinate(x, 10)} ${coordinate(y, 10)} ${coordinate(z, 10)} ${el}     1  UNL1        0.0000`,
    ),
    '@<TRIPOS>BOND',
    ...bonds.map(([a, b], i) => `${String(i + 1).padStart(6)} ${String(a).padStart(5)} ${String(b).padStart(5)}    1`),
    '',
  ].join('\n');

  it('finds an SDF and a MOL2 file of the same molecule identical, and measures a shift', async () => {
    const same = await diffStructures({ text: sdf(), format: 'sdf' }, { text: mol2, format: 'mol2' });
    expect(same.atoms).toMatchObject({ from: 9, to: 9, matched: 9 });
    expect(same.structurallyIdentical).toBe(true);
    expect(same.warnings.map((w) => w.code)).toContain('residue_names_not_compared');
    const shifted = await diffStructures({ text: sdf(), format: 'sdf' }, { text: sdf(1.5), format: 'sdf' });
    expect(shifted.rmsd).toBeCloseTo(1.5, 4);
    expect(shifted.rmsdSuperposed).toBeCloseTo(0, 4);
    expect(shifted.atoms.moved.count).toBe(9);
  });
});
