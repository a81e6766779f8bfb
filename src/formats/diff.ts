/**
 * Structure-aware comparison of two files: atoms are matched by chain, residue number, insertion
 * code, atom name and altloc (author numbering, as both PDB and mmCIF carry it), so a PDB file and
 * the mmCIF file of the same entry compare equal. Runs in a piscina thread (see pool/tasks.ts).
 */
import type { Model } from 'molstar/lib/mol-model/structure.js';
import { framesSeparatedByEnd, normalisePdbModels, readTrajectory } from './parse.js';
import { lastDecline, MODEL_REWRITE, type PdbAtoms, pdbAtomReaders, readPdbAtoms } from './pdbFast.js';
import type { Format, Problem } from './types.js';

export interface DiffOptions {
  /** Atoms that moved further than this (Å) are listed as moved. */
  moveThreshold: number;
  /** B-factor changes larger than this (Å²) are listed. */
  bfactorThreshold: number;
  /** Occupancy changes larger than this are listed. */
  occupancyThreshold: number;
  /** At most this many items per list; counts are always complete. */
  limit: number;
}

export const DEFAULT_DIFF_OPTIONS: DiffOptions = { moveThreshold: 0.01, bfactorThreshold: 1, occupancyThreshold: 0.01, limit: 100 };

type ResidueKind = 'polymer' | 'ligand' | 'water';

export interface ResidueRef {
  chain: string;
  number: number;
  insertionCode: string;
  name: string;
}

export interface AtomRef {
  chain: string;
  residue: number;
  insertionCode: string;
  residueName: string;
  atom: string;
  altloc: string;
}

interface AtomTable {
  keys: string[];
  refs: AtomRef[];
  xyz: Float64Array;
  b: Float64Array;
  occupancy: Float64Array;
  residues: Map<string, ResidueRef & { kind: ResidueKind }>;
  chains: Set<string>;
  models: number;
}

export interface Listed<T> {
  count: number;
  items: T[];
  truncated: boolean;
}

export interface StructuralDiff {
  models: { from: number; to: number };
  chains: { from: number; to: number; added: string[]; removed: string[] };
  residues: { from: number; to: number; added: Listed<ResidueRef>; removed: Listed<ResidueRef>; mutated: Listed<ResidueRef & { from: string; to: string }> };
  ligands: { added: Listed<ResidueRef>; removed: Listed<ResidueRef> };
  waters: { added: number; removed: number };
  atoms: {
    from: number;
    to: number;
    matched: number;
    added: Listed<AtomRef>;
    removed: Listed<AtomRef>;
    moved: Listed<AtomRef & { distance: number; from: number[]; to: number[] }>;
  };
  /** Root-mean-square deviation over matched atoms, in Å, without superposition (coordinates as stored). */
  rmsd: number | null;
  /** The same after the best rigid superposition of `to` onto `from` (Kabsch/Horn): shape change without rigid moves. */
  rmsdSuperposed: number | null;
  maxDisplacement: number | null;
  bfactors: Listed<AtomRef & { from: number; to: number }>;
  occupancies: Listed<AtomRef & { from: number; to: number }>;
  /** True when no atom, residue or chain was added, removed, moved or changed beyond the thresholds. */
  structurallyIdentical: boolean;
  warnings: Problem[];
}

const SEP = '\u0000';
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

function listed<T>(): Listed<T> {
  return { count: 0, items: [], truncated: false };
}

function push<T>(list: Listed<T>, item: () => T, limit: number) {
  list.count++;
  if (list.items.length < limit) list.items.push(item());
  else list.truncated = true;
}

/** A file to compare: its text (latin1), or its bytes (read as latin1 where a reader needs text). */
export type DiffInput = { text: string; format: Format } | { bytes: Uint8Array; format: Format };

const textOf = (input: DiffInput) =>
  'text' in input ? input.text : Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength).toString('latin1');

/**
 * The first model of a file as a table of atoms keyed for matching. PDB goes through the byte-level
 * reader (pdbFast.ts) unless `reference` is set or it leaves the file to Mol*; both give the same table.
 */
export async function readAtoms(source: DiffInput, options: { reference?: boolean } = {}): Promise<AtomTable> {
  if (source.format === 'pdb' && !options.reference) {
    const bytes = 'bytes' in source ? source.bytes : Buffer.from(source.text, 'latin1');
    // Occupancy is compared, so atom lines must reach its columns.
    let atoms = readPdbAtoms(bytes, 60);
    if (!atoms && lastDecline === MODEL_REWRITE) {
      // The same rewrites as readTrajectory, then the byte-level reader on their result.
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
      atoms = readPdbAtoms(Buffer.from(normalisePdbModels(framesSeparatedByEnd(text, []), []), 'latin1'), 60, true);
    }
    if (atoms) return pdbTable(atoms);
  }
  return readAtomsReference(textOf(source), source.format);
}

async function readAtomsReference(text: string, format: Format): Promise<AtomTable> {
  const warnings: Problem[] = [];
  const read = await readTrajectory(text, format, warnings, false);
  if (!('trajectory' in read)) throw new Error('the reader gave no model to compare');
  const { trajectory } = read;
  if (trajectory.frameCount === 0) throw new Error(`The ${format} file contains no atoms.`);
  // Loaded here, as parse.ts loads Mol*: a diff of two PDB files the byte-level reader reads needs none of it.
  const { Task } = await import('molstar/lib/mol-task/index.js');
  const model = await Task.resolveInContext(trajectory.getFrameAtIndex(0));
  const table = atomTable(model);
  table.models = trajectory.frameCount;
  return table;
}

function atomTable(model: Model): AtomTable {
  const { atoms, residues, chains, residueAtomSegments, chainAtomSegments, index } = model.atomicHierarchy;
  const { x, y, z, B_iso_or_equiv, occupancy } = model.atomicConformation;
  const count = atoms._rowCount;
  const entityTypes = model.entities.data.type;
  const entityTypeOfChain = (c: number): string | undefined => {
    const entity = index.getEntityFromChain(c as never);
    return entity >= 0 ? entityTypes.value(entity) : undefined;
  };
  const table = emptyTable(count, 1);
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const r = residueAtomSegments.index[i];
    const c = chainAtomSegments.index[i];
    const chain = chains.auth_asym_id.value(c);
    const number = residues.auth_seq_id.value(r);
    const insertionCode = residues.pdbx_PDB_ins_code.value(r).trim();
    const residueName = atoms.auth_comp_id.value(i) || atoms.label_comp_id.value(i);
    const atom = atoms.auth_atom_id.value(i) || atoms.label_atom_id.value(i);
    const altloc = atoms.label_alt_id.value(i).trim();
    const residueKey = `${chain}${SEP}${number}${SEP}${insertionCode}`;
    const ref = { chain, residue: number, insertionCode, residueName, atom, altloc };
    const entityType = table.residues.has(residueKey) ? undefined : entityTypeOfChain(c);
    recordAtom(table, seen, i, residueKey, ref, x[i], y[i], z[i], B_iso_or_equiv.value(i), occupancy.value(i), entityType);
  }
  return table;
}

/** The same table as atomTable(model) builds from Mol*'s model, from the byte-level PDB reader. */
function pdbTable(atoms: PdbAtoms): AtomTable {
  const read = pdbAtomReaders(atoms);
  const count = atoms.atomCount;
  const table = emptyTable(count, atoms.models);
  const seen = new Map<string, number>();
  const { residueOffsets, chainOffsets, residueEntityType } = atoms;
  let c = 0;
  let chain = '';
  for (let r = 0; r < atoms.residueCount; r++) {
    const first = residueOffsets[r];
    while (c < atoms.chainCount && chainOffsets[c] <= first) {
      chain = read.chainName(chainOffsets[c]);
      c++;
    }
    const number = read.authSeqId(first);
    const insertionCode = read.insCode(first).trim();
    const residueKey = `${chain}${SEP}${number}${SEP}${insertionCode}`;
    const type = residueEntityType[r];
    for (let i = first; i < residueOffsets[r + 1]; i++) {
      const residueName = read.compId(i);
      const atom = read.authAtomName(i) || read.atomName(i);
      const altloc = read.altId(i).trim();
      const ref = { chain, residue: number, insertionCode, residueName, atom, altloc };
      recordAtom(table, seen, i, residueKey, ref, read.x(i), read.y(i), read.z(i), read.bFactor(i), read.occupancy(i), type);
    }
  }
  return table;
}

function emptyTable(count: number, models: number): AtomTable {
  return {
    keys: new Array(count),
    refs: new Array(count),
    xyz: new Float64Array(count * 3),
    b: new Float64Array(count),
    occupancy: new Float64Array(count),
    residues: new Map(),
    chains: new Set(),
    models,
  };
}

/**
 * Puts atom `i` in the table, under its key, and its residue the first time the residue is met
 * (`entityType` is read only then). Both readers (Mol*'s model and the byte-level PDB reader) call
 * this, so they key and classify atoms alike.
 */
function recordAtom(
  table: AtomTable,
  seen: Map<string, number>,
  i: number,
  residueKey: string,
  ref: AtomTable['refs'][number],
  x: number,
  y: number,
  z: number,
  b: number,
  occupancy: number,
  entityType: string | undefined,
): void {
  let key = `${residueKey}${SEP}${ref.atom}${SEP}${ref.altloc}`;
  // Files without atom names (some XYZ, SDF) repeat keys: the n-th occurrence matches the n-th.
  const n = seen.get(key);
  if (n === undefined) seen.set(key, 1);
  else {
    seen.set(key, n + 1);
    key = `${key}${SEP}#${n + 1}`;
  }
  table.keys[i] = key;
  table.refs[i] = ref;
  table.xyz[3 * i] = x;
  table.xyz[3 * i + 1] = y;
  table.xyz[3 * i + 2] = z;
  table.b[i] = b;
  table.occupancy[i] = occupancy;
  table.chains.add(ref.chain);
  const residueName = ref.residueName;
  const existing = table.residues.get(residueKey);
  if (!existing) {
    const kind: ResidueKind = entityType === 'water' || WATER.has(residueName) ? 'water' : entityType === 'non-polymer' ? 'ligand' : 'polymer';
    table.residues.set(residueKey, { chain: ref.chain, number: ref.residue, insertionCode: ref.insertionCode, name: residueName, kind });
  } else if (!existing.name.split('/').includes(residueName)) {
    // Microheterogeneity: one position, two residue types (altlocs); both names are kept.
    existing.name = `${existing.name}/${residueName}`;
  }
}

const WATER = new Set(['HOH', 'WAT', 'DOD', 'H2O', 'SOL', 'TIP', 'TIP3', 'SPC']);
/** Formats whose residue names are real (chemical component ids); the others name residues however their writer likes. */
const MACROMOLECULAR: ReadonlySet<Format> = new Set(['pdb', 'cif', 'bcif']);

/** Compares two atom tables: what was added, removed, moved and changed going from `a` to `b`. */
export function compareAtoms(a: AtomTable, b: AtomTable, options: DiffOptions, compareResidueNames = true): StructuralDiff {
  const { limit } = options;
  const indexOfB = new Map<string, number>();
  for (let i = 0; i < b.keys.length; i++) indexOfB.set(b.keys[i], i);

  const added = listed<AtomRef>();
  const removed = listed<AtomRef>();
  const moved = listed<AtomRef & { distance: number; from: number[]; to: number[] }>();
  const bfactors = listed<AtomRef & { from: number; to: number }>();
  const occupancies = listed<AtomRef & { from: number; to: number }>();
  let matched = 0;
  const pairsA = new Int32Array(Math.min(a.keys.length, b.keys.length));
  const pairsB = new Int32Array(pairsA.length);
  let sumSquares = 0;
  let maxDisplacement = 0;
  const matchedInB = new Uint8Array(b.keys.length);
  for (let i = 0; i < a.keys.length; i++) {
    const j = indexOfB.get(a.keys[i]);
    if (j === undefined) {
      push(removed, () => a.refs[i], limit);
      continue;
    }
    matchedInB[j] = 1;
    pairsA[matched] = i;
    pairsB[matched] = j;
    matched++;
    const dx = b.xyz[3 * j] - a.xyz[3 * i];
    const dy = b.xyz[3 * j + 1] - a.xyz[3 * i + 1];
    const dz = b.xyz[3 * j + 2] - a.xyz[3 * i + 2];
    const squared = dx * dx + dy * dy + dz * dz;
    sumSquares += squared;
    const distance = Math.sqrt(squared);
    if (distance > maxDisplacement) maxDisplacement = distance;
    if (distance > options.moveThreshold) {
      push(
        moved,
        () => ({
          ...a.refs[i],
          distance: round(distance, 4),
          from: [a.xyz[3 * i], a.xyz[3 * i + 1], a.xyz[3 * i + 2]].map((v) => round(v, 4)),
          to: [b.xyz[3 * j], b.xyz[3 * j + 1], b.xyz[3 * j + 2]].map((v) => round(v, 4)),
        }),
        limit,
      );
    }
    if (Math.abs(b.b[j] - a.b[i]) > options.bfactorThreshold) push(bfactors, () => ({ ...a.refs[i], from: a.b[i], to: b.b[j] }), limit);
    if (Math.abs(b.occupancy[j] - a.occupancy[i]) > options.occupancyThreshold) {
      push(occupancies, () => ({ ...a.refs[i], from: a.occupancy[i], to: b.occupancy[j] }), limit);
    }
  }
  for (let j = 0; j < b.keys.length; j++) if (!matchedInB[j]) push(added, () => b.refs[j], limit);

  const residuesAdded = listed<ResidueRef>();
  const residuesRemoved = listed<ResidueRef>();
  const mutated = listed<ResidueRef & { from: string; to: string }>();
  const ligandsAdded = listed<ResidueRef>();
  const ligandsRemoved = listed<ResidueRef>();
  const waters = { added: 0, removed: 0 };
  const plain = ({ kind: _kind, ...ref }: ResidueRef & { kind: ResidueKind }): ResidueRef => ref;
  for (const [key, residue] of a.residues) {
    const other = b.residues.get(key);
    const sameLigand = other && other.kind === 'ligand' && (!compareResidueNames || other.name === residue.name);
    if (residue.kind === 'ligand' && !sameLigand) push(ligandsRemoved, () => plain(residue), limit);
    if (!other) {
      if (residue.kind === 'water') waters.removed++;
      else push(residuesRemoved, () => plain(residue), limit);
    } else if (compareResidueNames && other.name !== residue.name) {
      push(mutated, () => ({ ...plain(residue), from: residue.name, to: other.name }), limit);
    }
  }
  for (const [key, residue] of b.residues) {
    const other = a.residues.get(key);
    const sameLigand = other && other.kind === 'ligand' && (!compareResidueNames || other.name === residue.name);
    if (residue.kind === 'ligand' && !sameLigand) push(ligandsAdded, () => plain(residue), limit);
    if (!other) {
      if (residue.kind === 'water') waters.added++;
      else push(residuesAdded, () => plain(residue), limit);
    }
  }
  const countNonWater = (t: AtomTable) => [...t.residues.values()].filter((r) => r.kind !== 'water').length;
  const chainsAdded = [...b.chains].filter((c) => !a.chains.has(c)).sort();
  const chainsRemoved = [...a.chains].filter((c) => !b.chains.has(c)).sort();
  const structurallyIdentical =
    added.count + removed.count + moved.count + bfactors.count + occupancies.count + mutated.count + residuesAdded.count + residuesRemoved.count === 0 &&
    waters.added + waters.removed + chainsAdded.length + chainsRemoved.length === 0;
  return {
    models: { from: a.models, to: b.models },
    chains: { from: a.chains.size, to: b.chains.size, added: chainsAdded, removed: chainsRemoved },
    residues: { from: countNonWater(a), to: countNonWater(b), added: residuesAdded, removed: residuesRemoved, mutated },
    ligands: { added: ligandsAdded, removed: ligandsRemoved },
    waters,
    atoms: { from: a.keys.length, to: b.keys.length, matched, added, removed, moved },
    rmsd: matched > 0 ? round(Math.sqrt(sumSquares / matched), 4) : null,
    rmsdSuperposed: matched >= 3 ? round(superposedRmsd(a.xyz, b.xyz, pairsA, pairsB, matched), 4) : null,
    maxDisplacement: matched > 0 ? round(maxDisplacement, 4) : null,
    bfactors,
    occupancies,
    structurallyIdentical,
    warnings: [
      ...(a.models > 1 || b.models > 1 ? [{ code: 'first_model_only', message: 'Only the first model of each file was compared.' }] : []),
      ...(compareResidueNames
        ? []
        : [
            {
              code: 'residue_names_not_compared',
              message: 'Residue names were not compared: small-molecule formats carry placeholder residue names (MOL, UNL ...) that differ between writers.',
            },
          ]),
    ],
  };
}

/**
 * RMSD after optimal rigid superposition, by Horn's quaternion method: the largest eigenvalue of
 * a 4×4 matrix built from the cross-covariance of the centred coordinates gives it directly,
 * without forming the rotation.
 */
export function superposedRmsd(a: Float64Array, b: Float64Array, pairsA: Int32Array, pairsB: Int32Array, n: number): number {
  const ca = [0, 0, 0];
  const cb = [0, 0, 0];
  for (let k = 0; k < n; k++) {
    for (let d = 0; d < 3; d++) {
      ca[d] += a[3 * pairsA[k] + d];
      cb[d] += b[3 * pairsB[k] + d];
    }
  }
  for (let d = 0; d < 3; d++) {
    ca[d] /= n;
    cb[d] /= n;
  }
  const m = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  let g = 0;
  for (let k = 0; k < n; k++) {
    const p = [a[3 * pairsA[k]] - ca[0], a[3 * pairsA[k] + 1] - ca[1], a[3 * pairsA[k] + 2] - ca[2]];
    const q = [b[3 * pairsB[k]] - cb[0], b[3 * pairsB[k] + 1] - cb[1], b[3 * pairsB[k] + 2] - cb[2]];
    g += p[0] * p[0] + p[1] * p[1] + p[2] * p[2] + q[0] * q[0] + q[1] * q[1] + q[2] * q[2];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) m[3 * i + j] += p[i] * q[j];
  }
  const [sxx, sxy, sxz, syx, syy, syz, szx, szy, szz] = m;
  const k4 = [
    [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
    [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
    [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
    [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
  ];
  const largest = Math.max(...symmetricEigenvalues(k4));
  return Math.sqrt(Math.max(0, (g - 2 * largest) / n));
}

/** Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations. */
function symmetricEigenvalues(matrix: number[][]): number[] {
  const a = matrix.map((row) => [...row]);
  const size = a.length;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < size; i++) for (let j = i + 1; j < size; j++) off += a[i][j] * a[i][j];
    if (off < 1e-22) break;
    for (let p = 0; p < size; p++) {
      for (let q = p + 1; q < size; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < size; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < size; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
      }
    }
  }
  return a.map((row, i) => row[i]);
}

/** Reads both files (one after the other, to bound memory) and compares them. */
export async function diffStructures(
  from: DiffInput,
  to: DiffInput,
  options: DiffOptions = DEFAULT_DIFF_OPTIONS,
  read: { reference?: boolean } = {},
): Promise<StructuralDiff> {
  const a = await readAtoms(from, read);
  const b = await readAtoms(to, read);
  return compareAtoms(a, b, options, from.format === to.format || (MACROMOLECULAR.has(from.format) && MACROMOLECULAR.has(to.format)));
}
