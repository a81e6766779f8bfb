import type { Model } from 'molstar/lib/mol-model/structure.js';
import { atomicWeight } from './elements.js';
import { PolymerNames, WaterNames } from './residueNames.js';
import type { Problem, StructureSummary } from './types.js';

const WATER = new Set(['HOH', 'WAT', 'DOD', 'H2O', 'SOL', 'TIP', 'TIP3', 'SPC']);

/** Hill order: C first, then H, then the rest alphabetically; without carbon, all alphabetically. */
export function hillFormula(elements: Record<string, number>): string {
  const symbols = Object.keys(elements).filter((s) => s !== '' && s !== '?');
  const hasCarbon = 'C' in elements;
  symbols.sort((a, b) => {
    if (hasCarbon) {
      const rank = (s: string) => (s === 'C' ? 0 : s === 'H' ? 1 : 2);
      if (rank(a) !== rank(b)) return rank(a) - rank(b);
    }
    return a.localeCompare(b);
  });
  return symbols.map((s) => `${s}${elements[s] === 1 ? '' : elements[s]}`).join(' ');
}

function normaliseElement(symbol: string): string {
  const s = symbol.trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1).toLowerCase();
}

/**
 * Element counts of a list of atoms, read as summarizeAtoms reads them: a symbol that is no
 * element counts as the first letter of the atom's name. For the records of a multi-record file.
 */
export function countElements(count: number, symbol: (atom: number) => string, name: (atom: number) => string): Record<string, number> {
  const elements: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const normalised = normaliseElement(symbol(i));
    const element = ELEMENT_SYMBOL.test(normalised) && normalised !== 'X' ? normalised : /[A-Za-z]/.exec(name(i))?.[0].toUpperCase() || '?';
    elements[element] = (elements[element] ?? 0) + 1;
  }
  return elements;
}

/** Sum of standard atomic weights; symbols that are not elements (?, X, LP) count as nothing. */
export function molecularWeight(elements: Record<string, number>): number {
  let total = 0;
  for (const [symbol, count] of Object.entries(elements)) total += (atomicWeight(symbol) ?? 0) * count;
  return Math.round(total * 1000) / 1000;
}

/**
 * What a summary reads from a structure: one model's atoms in file order, cut into residues and
 * chains. A Mol* model provides it (every format), and so does an mmCIF `_atom_site` table read
 * straight from the tokenizer (large files: see summarizeCif.ts), so both give the same summary.
 */
export interface AtomTable {
  atomCount: number;
  typeSymbol(atom: number): string;
  atomName(atom: number): string;
  altId(atom: number): string;
  compId(atom: number): string;
  x(atom: number): number;
  y(atom: number): number;
  z(atom: number): number;
  residueCount: number;
  /** Residue starts in atom order, plus the end (residueCount + 1 entries). */
  residueOffsets: ArrayLike<number>;
  insCode(residue: number): string;
  authSeqId(residue: number): number;
  /** The author chain name of the chain holding this atom. */
  chainName(atom: number): string;
  chainCount: number;
  chainNameAt(chain: number): string;
  /** The entity type (polymer, non-polymer, water, branched) of the residue's chain. */
  entityType(residue: number): string | undefined;
  entityCount: number;
  componentName(compId: string): string | undefined;
  /**
   * Optional: a value equal for two atoms exactly when their atomName and altId both are. Spares
   * building a string per atom for the duplicate-atom check (large files).
   */
  atomKey?(atom: number): number | string;
  /**
   * Optional: atomKey's numeric values as an array, negative where atomKey gives a string. The
   * duplicate check compares them in place: a call per atom, and a key boxed per atom, cost
   * more than the comparisons.
   */
  atomKeys?: Float64Array;
  /** Optional: x, y, z of every atom as arrays (the values x(i), y(i), z(i) give), read without a call per atom. */
  coordinates?: { x: ArrayLike<number>; y: ArrayLike<number>; z: ArrayLike<number> };
  /** Optional: typeSymbol(i) as symbols[index[i]], counted per symbol rather than per atom. */
  symbolIndex?: { index: ArrayLike<number>; symbols: readonly string[] };
  /** Optional: whether altId(i) is non-empty for some atom, known without asking every atom. */
  hasAltlocs?: boolean;
  /** Optional: compId of each residue's first atom as names[index[residue]], without a call per residue. */
  residueComps?: { index: ArrayLike<number>; names: readonly string[] };
  /** Optional: whether insCode(r) is non-empty for some residue, known without asking every residue. */
  hasInsertionCodes?: boolean;
}

/** The atom table of a Mol* model. */
export function modelAtomTable(model: Model): AtomTable {
  const { atoms, residues, chains, residueAtomSegments, chainAtomSegments, index } = model.atomicHierarchy;
  const { x, y, z } = model.atomicConformation;
  const entityTypes = model.entities.data.type;
  // Without a chem_comp table Mol* makes up default components; those describe nothing.
  const source = model.sourceData.data as { db?: { chem_comp?: { _rowCount: number } } };
  const described = !source.db || (source.db.chem_comp?._rowCount ?? 0) > 0;
  const components = described ? model.properties.chemicalComponentMap : new Map<string, { name: string }>();
  return {
    atomCount: atoms._rowCount,
    typeSymbol: (i) => atoms.type_symbol.value(i),
    atomName: (i) => atoms.label_atom_id.value(i),
    altId: (i) => atoms.label_alt_id.value(i),
    compId: (i) => atoms.label_comp_id.value(i),
    x: (i) => x[i],
    y: (i) => y[i],
    z: (i) => z[i],
    coordinates: { x, y, z },
    residueCount: residues._rowCount,
    residueOffsets: residueAtomSegments.offsets,
    insCode: (r) => residues.pdbx_PDB_ins_code.value(r),
    authSeqId: (r) => residues.auth_seq_id.value(r),
    chainName: (a) => chains.auth_asym_id.value(chainAtomSegments.index[a]),
    chainCount: chains._rowCount,
    chainNameAt: (c) => chains.auth_asym_id.value(c),
    entityType: (r) => {
      const entity = index.getEntityFromChain(chainAtomSegments.index[residueAtomSegments.offsets[r]] as never);
      return entity >= 0 ? entityTypes.value(entity) : undefined;
    },
    entityCount: model.entities.data._rowCount,
    componentName: (comp) => components.get(comp)?.name,
  };
}

/** Reads the counts, composition and bounds of one Mol* model (see summarizeAtoms). */
export function summarizeModel(model: Model, problems: Problem[], warnings: Problem[], residueChecks = false): StructureSummary {
  return summarizeAtoms(modelAtomTable(model), problems, warnings, residueChecks);
}

/**
 * Reads the counts, composition and bounds of one model. Problems found on the way
 * (non-finite coordinates, missing elements) are pushed onto `problems` / `warnings`.
 * `residueChecks` turns on what only makes sense for residue-based formats (PDB, mmCIF):
 * duplicate atoms within a residue and residues the file does not describe.
 */
export function summarizeAtoms(table: AtomTable, problems: Problem[], warnings: Problem[], residueChecks = false): StructureSummary {
  const atomCount = table.atomCount;
  // Each pass over the atoms or residues is a function of its own: a large file's loops are
  // optimised while they run (on-stack replacement), and each such compilation covers the whole
  // function the loop is in; small functions make that quick, and one loop's deoptimisation
  // recompiles only its own.
  const { elementCounts, missingElements } = countElementsOf(table);
  const hasAltlocs = table.hasAltlocs ?? anyAltloc(table);
  const bounds = table.coordinates ? boundsOfArrays(table.coordinates, atomCount) : boundsOfCalls(table, atomCount);
  const { min, max, nonFinite, absurd } = bounds;
  const elements: Record<string, number> = {};
  for (const [key, count] of elementCounts) elements[key] = count;
  if (nonFinite > 0) {
    problems.push({ code: 'non_finite_coordinates', message: `${nonFinite} atom(s) have coordinates that are not finite numbers.` });
  }
  if (absurd > 0) {
    warnings.push({ code: 'absurd_coordinates', message: `${absurd} atom(s) lie more than 100,000 Å from the origin.` });
  }
  if (missingElements > 0) {
    warnings.push({
      code: 'missing_elements',
      message: `${missingElements} atom(s) have no valid chemical element; the formula and weight guess it from the atom name's first letter.`,
    });
  }

  const { ligandCounts, undescribed, duplicates, firstDuplicate, waters, hasInsertionCodes } = residueFacts(table, residueChecks);
  if (duplicates > 0) {
    warnings.push({
      code: 'duplicate_atoms',
      message: `${duplicates} atom(s) repeat a name (and alternate location) already used in their residue, e.g. ${firstDuplicate}.`,
    });
  }
  if (undescribed.size > 0) {
    const list = [...undescribed]
      .slice(0, 10)
      .map((c) => c || '(blank)')
      .join(', ');
    warnings.push({
      code: 'unknown_residues',
      message: `${undescribed.size} residue type(s) are neither standard amino acids, nucleotides or water nor described in the file (no HETNAM or chem_comp name): ${list}${undescribed.size > 10 ? ', ...' : ''}.`,
    });
  }
  const authChains = new Set<string>();
  for (let c = 0; c < table.chainCount; c++) authChains.add(table.chainNameAt(c));

  const summary: StructureSummary = {
    atoms: atomCount,
    models: 1,
    chains: authChains.size,
    residues: table.residueCount,
    entities: table.entityCount,
    waters,
    ligands: [...ligandCounts.entries()]
      .map(([name, count]) => {
        const description = table.componentName(name)?.trim();
        return description && description !== '?' && description !== name ? { name, count, description } : { name, count };
      })
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
    elements,
    formula: hillFormula(elements),
    molecularWeight: molecularWeight(elements),
    hasAltlocs,
    hasInsertionCodes,
  };
  if (Number.isFinite(min[0])) summary.bounds = { min: min.map(round3) as Vec3, max: max.map(round3) as Vec3 };
  return summary;
}

/** A symbol's element, or '' when the symbol is not one (through a cache: a few distinct symbols, millions of atoms). */
function elementOfSymbol(known: Map<string, string>, symbol: string): string {
  let element = known.get(symbol);
  if (element === undefined) {
    const normalised = normaliseElement(symbol);
    element = ELEMENT_SYMBOL.test(normalised) && normalised !== 'X' ? normalised : '';
    known.set(symbol, element);
  }
  return element;
}

/**
 * No element, or junk where it belongs (old PDB files keep ids in columns 73-80): the atom
 * name's first letter is the usual guess (CA → C), and the report says so.
 */
const guessedElement = (table: AtomTable, i: number) => /[A-Za-z]/.exec(table.atomName(i))?.[0].toUpperCase() || '?';

/**
 * Element counts in the order of each element's first atom (a Map keeps insertion order, as the
 * summary's object then does: an object gaining keys changes shape with every file's element set),
 * and how many atoms had no valid element.
 */
function countElementsOf(table: AtomTable): { elementCounts: Map<string, number>; missingElements: number } {
  const atomCount = table.atomCount;
  const elementCounts = new Map<string, number>();
  let missingElements = 0;
  const known = new Map<string, string>();
  const bySymbol = table.symbolIndex;
  if (!bySymbol) {
    for (let i = 0; i < atomCount; i++) {
      let element = elementOfSymbol(known, table.typeSymbol(i));
      if (element === '') {
        missingElements++;
        element = guessedElement(table, i);
      }
      elementCounts.set(element, (elementCounts.get(element) ?? 0) + 1);
    }
    return { elementCounts, missingElements };
  }
  // Per symbol: how many atoms and the first of them; atoms of symbols that are no element one by one.
  const { index, symbols } = bySymbol;
  const { counts, first } = countSymbols(index, symbols.length, atomCount);
  const firstOf = new Map<string, number>();
  const add = (key: string, count: number, at: number) => {
    elementCounts.set(key, (elementCounts.get(key) ?? 0) + count);
    const seen = firstOf.get(key);
    if (seen === undefined || at < seen) firstOf.set(key, at);
  };
  for (let k = 0; k < symbols.length; k++) {
    if (counts[k] === 0) continue;
    const element = elementOfSymbol(known, symbols[k]);
    if (element !== '') add(element, counts[k], first[k]);
    else {
      missingElements += counts[k];
      for (let i = first[k]; i < atomCount; i++) if (index[i] === k) add(guessedElement(table, i), 1, i);
    }
  }
  const order = [...firstOf.entries()].sort((p, q) => p[1] - q[1]);
  const sorted = new Map<string, number>();
  for (const [key] of order) sorted.set(key, elementCounts.get(key) as number);
  return { elementCounts: sorted, missingElements };
}

/** How many atoms have each symbol, and the first of them (-1: none). */
function countSymbols(index: ArrayLike<number>, symbolCount: number, atomCount: number): { counts: Int32Array; first: Int32Array } {
  const counts = new Int32Array(symbolCount);
  const first = new Int32Array(symbolCount).fill(-1);
  for (let i = 0; i < atomCount; i++) {
    const k = index[i];
    if (counts[k]++ === 0) first[k] = i;
  }
  return { counts, first };
}

function anyAltloc(table: AtomTable): boolean {
  for (let i = 0; i < table.atomCount; i++) if (table.altId(i) !== '') return true;
  return false;
}

interface Bounds {
  min: [number, number, number];
  max: [number, number, number];
  /** Atoms with a coordinate that is not finite (left out of min and max). */
  nonFinite: number;
  /** Atoms more than 100,000 Å from the origin on some axis. */
  absurd: number;
}

function boundsOfArrays(c: { x: ArrayLike<number>; y: ArrayLike<number>; z: ArrayLike<number> }, atomCount: number): Bounds {
  const { x: xs, y: ys, z: zs } = c;
  let minX = Infinity;
  let minY = Infinity;
  let minZ = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  let maxZ = -Infinity;
  let nonFinite = 0;
  let absurd = 0;
  for (let i = 0; i < atomCount; i++) {
    const cx = xs[i];
    const cy = ys[i];
    const cz = zs[i];
    // One test for the usual atom (finite and within 1e5 Å: NaN and infinities fail it), the others after.
    if (!(Math.abs(cx) <= 1e5 && Math.abs(cy) <= 1e5 && Math.abs(cz) <= 1e5)) {
      if (!Number.isFinite(cx) || !Number.isFinite(cy) || !Number.isFinite(cz)) {
        nonFinite++;
        continue;
      }
      absurd++;
    }
    // Selects rather than branches: coordinates in file order make these hard to predict.
    minX = cx < minX ? cx : minX;
    minY = cy < minY ? cy : minY;
    minZ = cz < minZ ? cz : minZ;
    maxX = cx > maxX ? cx : maxX;
    maxY = cy > maxY ? cy : maxY;
    maxZ = cz > maxZ ? cz : maxZ;
  }
  return { min: [minX, minY, minZ], max: [maxX, maxY, maxZ], nonFinite, absurd };
}

function boundsOfCalls(table: AtomTable, atomCount: number): Bounds {
  const min: [number, number, number] = [Infinity, Infinity, Infinity];
  const max: [number, number, number] = [-Infinity, -Infinity, -Infinity];
  let nonFinite = 0;
  let absurd = 0;
  for (let i = 0; i < atomCount; i++) {
    const cx = table.x(i);
    const cy = table.y(i);
    const cz = table.z(i);
    if (!Number.isFinite(cx) || !Number.isFinite(cy) || !Number.isFinite(cz)) {
      nonFinite++;
      continue;
    }
    if (Math.abs(cx) > 1e5 || Math.abs(cy) > 1e5 || Math.abs(cz) > 1e5) absurd++;
    if (cx < min[0]) min[0] = cx;
    if (cy < min[1]) min[1] = cy;
    if (cz < min[2]) min[2] = cz;
    if (cx > max[0]) max[0] = cx;
    if (cy > max[1]) max[1] = cy;
    if (cz > max[2]) max[2] = cz;
  }
  return { min, max, nonFinite, absurd };
}

/** What the summary reads residue by residue: waters, ligands, insertion codes and (residueChecks) duplicate atoms and undescribed components. */
function residueFacts(table: AtomTable, residueChecks: boolean) {
  const ligandCounts = new Map<string, number>();
  const undescribed = new Set<string>();
  const checkedComponents = new Set<string>();
  let duplicates = 0;
  let firstDuplicate: string | undefined;
  let waters = 0;
  let hasInsertionCodes = table.hasInsertionCodes ?? false;
  const insertionCodesKnown = table.hasInsertionCodes !== undefined;
  const names = new Set<string | number>();
  const seenKeys: (string | number)[] = [];
  const offsets = table.residueOffsets;
  const typedKeys = table.atomKeys;
  const comps = table.residueComps;
  const checkedIndex = comps ? new Uint32Array(comps.names.length) : undefined;
  const waterIndex = comps ? new Uint8Array(comps.names.length) : undefined;
  const keyTable: KeyTable = { keys: new Float64Array(0), stamps: new Int32Array(0), stamp: 0 };
  for (let r = 0; r < table.residueCount; r++) {
    if (!hasInsertionCodes && !insertionCodesKnown && table.insCode(r) !== '') hasInsertionCodes = true;
    const firstAtom = offsets[r];
    const comp = comps ? comps.names[comps.index[r]] : table.compId(firstAtom);
    if (residueChecks) {
      const end = offsets[r + 1];
      const found = !typedKeys
        ? -1
        : end - firstAtom <= 32
          ? duplicatesByKeys(typedKeys, firstAtom, end)
          : duplicatesByHashedKeys(typedKeys, firstAtom, end, keyTable);
      if (found > 0) {
        duplicates += found;
        if (firstDuplicate === undefined) {
          const a = firstDuplicateByKeys(typedKeys as Float64Array, firstAtom, end);
          firstDuplicate = `${table.atomName(a)} of ${comp} ${table.authSeqId(r)}${table.insCode(r)} in chain ${table.chainName(a)}`;
        }
      }
      if (found < 0) {
        // Small residues are checked against a list (Set.clear() allocates a new table per residue).
        const small = end - firstAtom <= 32;
        if (small) seenKeys.length = 0;
        else names.clear();
        for (let a = firstAtom; a < end; a++) {
          const key = table.atomKey ? table.atomKey(a) : `${table.atomName(a)}\u0000${table.altId(a)}`;
          if (small ? seenKeys.includes(key) : names.has(key)) {
            duplicates++;
            firstDuplicate ??= `${table.atomName(a)} of ${comp} ${table.authSeqId(r)}${table.insCode(r)} in chain ${table.chainName(a)}`;
          } else if (small) seenKeys.push(key);
          else names.add(key);
        }
      }
      // Once per component (by its index when the table gives them: a Set lookup per residue cost more).
      if (checkedIndex ? checkedIndex[(comps as ResidueComps).index[r]]++ === 0 : !checkedComponents.has(comp)) {
        checkedComponents.add(comp);
        if (!PolymerNames.has(comp) && !WaterNames.has(comp) && !table.componentName(comp)) undescribed.add(comp);
      }
    }
    const type = table.entityType(r);
    if (type === 'water' || (waterIndex ? isWaterName(waterIndex, (comps as ResidueComps).index[r], comp) : WATER.has(comp))) {
      waters++;
    } else if (type === 'non-polymer') {
      ligandCounts.set(comp, (ligandCounts.get(comp) ?? 0) + 1);
    }
  }
  return { ligandCounts, undescribed, duplicates, firstDuplicate, waters, hasInsertionCodes };
}

type ResidueComps = NonNullable<AtomTable['residueComps']>;

/** WATER.has(comp) for the component at `k`, worked out once per index (0: not yet, 1: no, 2: yes). */
function isWaterName(known: Uint8Array, k: number, comp: string): boolean {
  if (known[k] === 0) known[k] = WATER.has(comp) ? 2 : 1;
  return known[k] === 2;
}

/**
 * How many atoms of [start, end) repeat the key of an earlier atom there (the count the list and
 * the set below give), or -1 when one of the keys is not numeric (the caller asks atomKey then).
 */
function duplicatesByKeys(keys: Float64Array, start: number, end: number): number {
  let found = 0;
  for (let a = start; a < end; a++) {
    const key = keys[a];
    if (key < 0) return -1;
    for (let q = start; q < a; q++) {
      if (keys[q] === key) {
        found++;
        break;
      }
    }
  }
  return found;
}

/** An open-addressing set of keys, emptied by a new stamp rather than by clearing it. */
interface KeyTable {
  keys: Float64Array;
  stamps: Int32Array;
  stamp: number;
}

/**
 * duplicatesByKeys for a residue of any size, through `table` (grown as needed, kept from residue
 * to residue): residues of many atoms (copies of a chain read under one chain id make residues of
 * a hundred or more) would otherwise go through a Set of boxed keys, and the list's pairwise
 * comparisons grow with the square of their size.
 */
function duplicatesByHashedKeys(keys: Float64Array, start: number, end: number, table: KeyTable): number {
  const size = end - start;
  if (table.keys.length < 2 * size) {
    let capacity = 64;
    while (capacity < 2 * size) capacity *= 2;
    table.keys = new Float64Array(capacity);
    table.stamps = new Int32Array(capacity);
    table.stamp = 0;
  }
  const stamp = ++table.stamp;
  const slots = table.keys;
  const stamps = table.stamps;
  const mask = slots.length - 1;
  let found = 0;
  for (let a = start; a < end; a++) {
    const key = keys[a];
    if (key < 0) return -1;
    // Keys are integers below 2^53: their low and high 32 bits mixed.
    let h = Math.imul((key | 0) ^ Math.imul((key / 4294967296) | 0, 0x01000193), 0x9e3779b1) & mask;
    for (;;) {
      if (stamps[h] !== stamp) {
        stamps[h] = stamp;
        slots[h] = key;
        break;
      }
      if (slots[h] === key) {
        found++;
        break;
      }
      h = (h + 1) & mask;
    }
  }
  return found;
}

/** The first atom of [start, end) whose key an earlier atom there has (one exists). */
function firstDuplicateByKeys(keys: Float64Array, start: number, end: number): number {
  for (let a = start + 1; a < end; a++) for (let q = start; q < a; q++) if (keys[q] === keys[a]) return a;
  return -1;
}

const ELEMENT_SYMBOL = /^[A-Z][a-z]?$/;
type Vec3 = [number, number, number];
const round3 = (v: number) => Math.round(v * 1000) / 1000;
