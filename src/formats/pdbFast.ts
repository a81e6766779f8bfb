/**
 * A PDB reader that works on the file's bytes by their fixed columns and builds only what the
 * summary and the structure diff read. Written by hand because Mol*'s PDB path (the reference,
 * parse.ts) splits the whole text into lines, turns every record into an mmCIF-like token table
 * and then builds a full model (indexes, sequences, secondary structure, bonds) of which the
 * summary reads a few columns; that costs several times the read itself, and twice for a diff.
 *
 * Exactness comes first: this reader reproduces what Mol* 5.11 makes of a PDB file, step by step
 * (the same column cuts, number parsing, label_asym_id and label_seq_id assignment, component
 * and entity inference, atom sorting and residue/chain segmentation), and uses Mol*'s own helpers
 * where they are cheap (component and entity builders, HETNAM/SEQRES/COMPND parsers; its SEQRES
 * alignment is redone over typed arrays with the same traceback). Wherever the reference would do
 * something this reader does not (old Mac line ends, atom lines too short for their coordinates,
 * files without atoms), it declines and the caller uses the reference path; files whose MODEL or
 * END records the reference rewrites first are rewritten the same way by the caller and read here
 * (MODEL_REWRITE). A test compares both paths on every PDB file of the corpus, altered copies of
 * them, and files written by gemmi and Open Babel.
 */

import { ElementSymbol, getMoleculeType } from 'molstar/lib/mol-model/structure/model/types.js';
import { ComponentBuilder } from 'molstar/lib/mol-model-formats/structure/common/component.js';
import { EntityBuilder } from 'molstar/lib/mol-model-formats/structure/common/entity.js';
import { getEntityPolySeq, parseCmpnd, parseHetnam, parseSeqres } from 'molstar/lib/mol-model-formats/structure/pdb/entity.js';
import type { AtomTable } from './summarize.js';
import type { Problem } from './types.js';

const SP = 32;
const TAB = 9;

/** Mol*'s Tokenizer.trim over bytes: [start, end) without leading/trailing spaces and tabs. */
function trimStart(b: Uint8Array, s: number, e: number): number {
  let c = b[s];
  const last = e - 1;
  while ((c === TAB || c === SP) && s <= last) c = b[++s];
  return s;
}
function trimEnd(b: Uint8Array, s: number, e: number): number {
  let last = e - 1;
  let c = b[last];
  while ((c === TAB || c === SP) && last >= s) c = b[--last];
  return last + 1;
}

/** Mol*'s number-parser parseInt over bytes (stops at the first non-digit). */
function parseIntBytes(b: Uint8Array, start: number, end: number): number {
  let i = start;
  let ret = 0;
  let neg = 1;
  if (b[i] === 45) {
    neg = -1;
    ++i;
  } else if (b[i] === 43) ++i;
  for (; i < end; i++) {
    const c = b[i] - 48;
    if (c > 9 || c < 0 || Number.isNaN(c)) return (neg * ret) | 0;
    ret = (10 * ret + c) | 0;
  }
  return neg * ret;
}

/** Mol*'s number-parser parseFloat over bytes, with the same arithmetic (so the same doubles). */
function parseFloatBytes(b: Uint8Array, start: number, end: number): number {
  let i = start;
  let neg = 1.0;
  let ret = 0.0;
  let point = 0.0;
  let div = 1.0;
  if (b[i] === 45) {
    neg = -1;
    ++i;
  } else if (b[i] === 43) ++i;
  while (i < end) {
    let c = b[i] - 48;
    if (c >= 0 && c < 10) {
      ret = ret * 10 + c;
      ++i;
    } else if (c === -2) {
      ++i;
      while (i < end) {
        c = b[i] - 48;
        if (c >= 0 && c < 10) {
          point = 10.0 * point + c;
          div = 10.0 * div;
          ++i;
        } else if (c === 53 || c === 21) {
          return scientific(neg * (ret + point / div), b, i + 1, end);
        } else {
          return neg * (ret + point / div);
        }
      }
      return neg * (ret + point / div);
    } else if (c === 53 || c === 21) {
      return scientific(neg * ret, b, i + 1, end);
    } else break;
  }
  return neg * ret;
}
function scientific(main: number, b: Uint8Array, start: number, end: number): number {
  if (b[start] === 43) start++;
  return main * 10.0 ** parseIntBytes(b, start, end);
}

/** A trimmed field as Mol*'s token column reads it: value 0 when empty; a float the way CifField.float does (`|| 0`). */
function fieldFloat(b: Uint8Array, s: number, e: number): number {
  const ts = trimStart(b, s, e);
  const te = trimEnd(b, ts, e);
  return parseFloatBytes(b, ts, te) || 0;
}

/**
 * A short token (up to 4 bytes) as a number: equal codes ⇔ equal tokens. Longer tokens never occur
 * for the fields coded (they are cut from at most 4 columns).
 */
function code(b: Uint8Array, s: number, e: number): number {
  let v = e - s;
  for (let i = s; i < e; i++) v = v * 256 + b[i];
  return v + (e - s) * 2 ** 40;
}

/** code() of a string's (latin1) characters. */
function stringCode(text: string): number {
  let v = text.length;
  for (let i = 0; i < text.length; i++) v = v * 256 + text.charCodeAt(i);
  return v + text.length * 2 ** 40;
}

const latin1 = (b: Uint8Array, s: number, e: number): string => {
  if (e - s > 16) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', s, e);
  let out = '';
  for (let i = s; i < e; i++) out += String.fromCharCode(b[i]);
  return out;
};

/** What CifField.str gives for a token: '' for '.' and '?'. */
const tokenStr = (t: string): string => (t === '.' || t === '?' ? '' : t);

const startsWith = (b: Uint8Array, s: number, e: number, word: string): boolean => {
  if (word.length > e - s) return false;
  for (let i = 0; i < word.length; i++) if (b[s + i] !== word.charCodeAt(i)) return false;
  return true;
};

/**
 * An atom record's coordinates fail the check every PDB file goes through before it is read
 * (safeText.ts): the caller refuses the file as that check does. When the reader returns atoms,
 * every atom record of the file passed it.
 */
export const COORDINATES_NOT_NUMBERS = 'coordinates that are not numbers';

/** scanLines split frames at END records, then met a MODEL line: the reference splits none. */
const RESCAN_WITHOUT_END_FRAMES = 'rescan without END frames';

/** JavaScript's \s over latin1. */
const isSpace = (c: number): boolean => c === SP || (c >= 9 && c <= 13) || c === 0xa0;

class Growable {
  array: Int32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.array = new Int32Array(capacity);
  }
  push(v: number) {
    if (this.length === this.array.length) {
      const next = new Int32Array(this.array.length * 2);
      next.set(this.array);
      this.array = next;
    }
    this.array[this.length++] = v;
  }
}

/** Mol*'s LabelAsymIdHelper (pdb/atom-site.js), called once per run of atoms rather than per atom. */
class LabelAsym {
  private counts = new Map<string, number>();
  private currModel: number | undefined = undefined;
  private currAsym = '';
  private currLabel = '';
  constructor(private readonly hasAssemblies: boolean) {}
  clear() {
    this.counts.clear();
    this.currModel = undefined;
  }
  private get(asym: string, model: number, ter: boolean): string {
    if (this.hasAssemblies) return asym;
    if (model !== this.currModel) {
      this.counts.clear();
      this.currModel = model;
      this.currLabel = asym;
    } else if (this.currAsym !== asym) {
      this.currAsym = asym;
      this.currLabel = asym;
    }
    const count = this.counts.get(asym);
    if (count !== undefined) {
      if (ter) {
        this.counts.set(asym, count + 1);
        this.currLabel = `${asym}_${count + 1}`;
      }
    } else this.counts.set(asym, 0);
    return this.currLabel;
  }
  /** The label of every atom of a run (constant over it); the second atom's call keeps the state exact. */
  run(asym: string, model: number, ter: boolean, length: number): string {
    const label = this.get(asym, model, ter);
    if (length > 1) this.get(asym, model, false);
    return label;
  }
}

const UNALIGNED = -1;

/** Every atom of the first model, with what the summary and the diff read, and Mol*'s order of them. */
export interface PdbAtoms {
  bytes: Uint8Array;
  /** Atoms in the first model. */
  atomCount: number;
  /** File index (within the first model) of the atom at each position of Mol*'s sorted order; undefined when that order is the file's. */
  order: Int32Array | undefined;
  /** Per atom, in file order: line start and line length (capped at 255). */
  lineStart: Int32Array;
  lineLength: Uint8Array;
  /** Per atom, in Mol*'s order: coordinates as Mol* stores them (32-bit floats), index into `symbols` of the element symbol. */
  x: Float32Array;
  y: Float32Array;
  z: Float32Array;
  element: Uint8Array;
  symbols: string[];
  /** Residue and chain starts, as positions in Mol*'s order. */
  residueOffsets: Int32Array;
  residueCount: number;
  chainOffsets: Int32Array;
  chainCount: number;
  /** Entity type of each residue's chain. */
  residueEntityType: (string | undefined)[];
  entityCount: number;
  componentName(comp: string): string | undefined;
  models: number;
  /** label_atom_id suffixes Mol* gives repeated atom names within a residue (file index → n of name_n). */
  nameSuffix: Map<number, number>;
  /** Name and altloc as one value (AtomTable.atomKey), in Mol*'s order; a negative value means: the string in atomKeyStrings (by file index). */
  atomKeys: Float64Array;
  atomKeyStrings: Map<number, string>;
  /** True when every occupancy field is blank (Mol* then reads occupancy 1 for all). */
  occupancyBlank: boolean;
  /** Whether an atom of the first model has an alternate location (not blank, '.' or '?'). */
  hasAltlocs: boolean;
  warnings: Problem[];
  /** Deposition date and PDB id from the last HEADER record, as Mol* keeps them. */
  header: { idCode?: string; depDate?: string };
}

/**
 * The decline that means: the reference rewrites this file's MODEL/ENDMDL/END records first
 * (framesSeparatedByEnd, normalisePdbModels in parse.ts). The caller can apply the same rewrite and
 * read the result with `modelsNormalised`.
 */
export const MODEL_REWRITE = 'the reference rewrites MODEL records';

/** Why the fast reader left a file to the reference path (for tests and profiling). */
export let lastDecline = '';
const decline = (why: string): undefined => {
  lastDecline = why;
  return undefined;
};

class Growable8 {
  array: Uint8Array;
  length = 0;
  constructor(capacity: number) {
    this.array = new Uint8Array(capacity);
  }
  push(v: number) {
    if (this.length === this.array.length) {
      const next = new Uint8Array(this.array.length * 2);
      next.set(this.array);
      this.array = next;
    }
    this.array[this.length++] = v;
  }
}

/**
 * Whether the 8 columns at `start` pass the coordinate check every PDB file goes through before it
 * is read (safeText.ts, pdbCoordinateRefusal): only bytes a number is written with, and a digit.
 */
function coordinateBytesOk(b: Uint8Array, start: number): boolean {
  let digits = 0;
  for (let i = start; i < start + 8; i++) {
    const c = b[i];
    if (c >= 48 && c <= 57) digits++;
    else if (c !== SP && c !== 46 && c !== 45 && c !== 43 && c !== 101 && c !== 69) return false;
  }
  return digits > 0;
}

/**
 * fieldFloat over the 8 columns at `start`, stored straight into `into[at]` (as Mol*'s Float32Array
 * does): returning the double would box it, three times per atom. Returns false, storing nothing,
 * when the field fails the coordinate check (coordinateBytesOk): the scan reads every byte of the
 * field anyway, so the check costs nothing more here than a second pass over the file would.
 * The usual field (blanks, an optional minus, digits, a point, digits) is read in one pass with
 * Mol*'s arithmetic; anything else goes through the check and the general parser.
 */
function coordinateInto(b: Uint8Array, start: number, into: Float32Array, at: number): boolean {
  const end = start + 8;
  let i = start;
  while (i < end && b[i] === SP) i++;
  let neg = 1.0;
  if (i < end && b[i] === 45) {
    neg = -1;
    i++;
  }
  const intStart = i;
  let ret = 0.0;
  for (; i < end; i++) {
    const d = b[i] - 48;
    if (d < 0 || d > 9) break;
    ret = ret * 10 + d;
  }
  if (i > intStart && i < end - 1 && b[i] === 46) {
    i++;
    let point = 0.0;
    let div = 1.0;
    for (; i < end; i++) {
      const d = b[i] - 48;
      if (d < 0 || d > 9) break;
      point = 10.0 * point + d;
      div = 10.0 * div;
    }
    if (i === end && div > 1) {
      into[at] = neg * (ret + point / div) || 0;
      return true;
    }
  }
  if (!coordinateBytesOk(b, start)) return false;
  coordinateIntoGeneral(b, start, into, at);
  return true;
}

function coordinateIntoGeneral(b: Uint8Array, start: number, into: Float32Array, at: number): void {
  const end = start + 8;
  let i = start;
  let c = b[i];
  while ((c === TAB || c === SP) && i < end) c = b[++i];
  let last = end - 1;
  c = b[last];
  while ((c === TAB || c === SP) && last >= i) c = b[--last];
  const stop = last + 1;
  let neg = 1.0;
  let ret = 0.0;
  if (b[i] === 45) {
    neg = -1;
    ++i;
  } else if (b[i] === 43) ++i;
  while (i < stop) {
    const d = b[i] - 48;
    if (d >= 0 && d < 10) {
      ret = ret * 10 + d;
      ++i;
    } else if (d === -2) {
      ++i;
      let point = 0.0;
      let div = 1.0;
      while (i < stop) {
        const f = b[i] - 48;
        if (f >= 0 && f < 10) {
          point = 10.0 * point + f;
          div = 10.0 * div;
          ++i;
        } else break;
      }
      if (i < stop && (b[i] === 101 || b[i] === 69)) {
        into[at] = scientific(neg * (ret + point / div), b, i + 1, stop) || 0;
        return;
      }
      into[at] = neg * (ret + point / div) || 0;
      return;
    } else if (d === 53 || d === 21) {
      into[at] = scientific(neg * ret, b, i + 1, stop) || 0;
      return;
    } else break;
  }
  into[at] = neg * ret || 0;
}

class GrowableF64 {
  array: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.array = new Float64Array(capacity);
  }
  push(v: number) {
    if (this.length === this.array.length) {
      const next = new Float64Array(this.array.length * 2);
      next.set(this.array);
      this.array = next;
    }
    this.array[this.length++] = v;
  }
}

/** What the pass over the lines collects. */
interface ScanState {
  /** Per run: component (index into compNames), chain byte, insertion code byte, residue number (as Mol*'s integer column reads it) and its token (code()). */
  runComp: Growable;
  runAsym: Growable8;
  runIns: Growable8;
  runSeqInt: Growable;
  runSeqTok: GrowableF64;
  compNames: string[];
  compIndex: Map<number, number>;
  /** MODEL records without a number the reference renumbers: (1-based line, model ordinal) pairs. */
  unnumberedModels: number[];
  /** A MODEL record with nothing after it (opens the reference's MODEL rewrite). */
  bareModelLine: boolean;
  /**
   * No MODEL line so far: END records may separate frames, which the reference makes models
   * (framesSeparatedByEnd) when no line starts with MODEL. They are read as such while scanning;
   * whether the reference does so too is known at the end (endThenAtoms, no MODEL line).
   */
  endFrames: boolean;
  frameOpen: boolean;
  frames: number;
  endmdlLine: boolean;
  /** Per atom line (every model), `atoms` of them: line start and line length (capped at 255). */
  atomLines: Int32Array;
  atomLength: Uint8Array;
  atoms: number;
  modelStarts: number[];
  modelNum: number;
  anyModelLine: boolean;
  endThenAtoms: boolean;
  sawEndLine: boolean;
  normModel: number;
  normInModel: boolean;
  wide: boolean;
  hasAssemblies: boolean;
  anyInsCode: boolean;
  occupancyBlank: boolean;
  anyAltloc: boolean;
  hetnamBlocks: string[][];
  seqresLines: string[] | undefined;
  seqresOpen: boolean;
  compndBlocks: string[][];
  compndOpen: boolean;
  hetnamOpen: boolean;
  idCode: string | undefined;
  depDate: string | undefined;
  runStart: Growable;
  runTer: Growable8;
  runModel: Growable;
  terPending: boolean;
  prevLine: number;
  prevModel: number;
  firstModel: number;
  /**
   * Per atom of the first model (the first `firstAtoms` atom lines), arrays as long as atomLines:
   * coordinates, element (index into symbols) and name-and-altloc key.
   */
  xs: Float32Array;
  ys: Float32Array;
  zs: Float32Array;
  elements: Uint8Array;
  keys: Float64Array;
  firstAtoms: number;
  symbolIndex: Map<number, number>;
  symbols: string[];
  nameSuffix: Map<number, number>;
  atomKeyStrings: Map<number, string>;
  /** The residue's names so far (codes), a fixed buffer: emptying a JS array per residue reallocates it. */
  names: Float64Array;
  nameCount: number;
  nameCounts: Map<number, number>;
}

function newScanState(n: number): ScanState {
  const guess = Math.max(1024, Math.ceil(n / 81));
  return {
    runComp: new Growable(Math.max(1024, guess >> 3)),
    runAsym: new Growable8(Math.max(1024, guess >> 3)),
    runIns: new Growable8(Math.max(1024, guess >> 3)),
    runSeqInt: new Growable(Math.max(1024, guess >> 3)),
    runSeqTok: new GrowableF64(Math.max(1024, guess >> 3)),
    compNames: [],
    compIndex: new Map(),
    unnumberedModels: [],
    bareModelLine: false,
    endFrames: false,
    frameOpen: false,
    frames: 0,
    endmdlLine: false,
    atomLines: new Int32Array(guess),
    atomLength: new Uint8Array(guess),
    atoms: 0,
    modelStarts: [],
    modelNum: 0,
    anyModelLine: false,
    endThenAtoms: false,
    sawEndLine: false,
    normModel: 0,
    normInModel: false,
    wide: false,
    hasAssemblies: false,
    anyInsCode: false,
    occupancyBlank: true,
    anyAltloc: false,
    hetnamBlocks: [],
    seqresLines: undefined,
    seqresOpen: false,
    compndBlocks: [],
    compndOpen: false,
    hetnamOpen: false,
    idCode: undefined,
    depDate: undefined,
    runStart: new Growable(Math.max(1024, guess >> 3)),
    runTer: new Growable8(Math.max(1024, guess >> 3)),
    runModel: new Growable(Math.max(1024, guess >> 3)),
    terPending: false,
    prevLine: -1,
    prevModel: -1,
    firstModel: 0,
    xs: new Float32Array(guess),
    ys: new Float32Array(guess),
    zs: new Float32Array(guess),
    elements: new Uint8Array(guess),
    keys: new Float64Array(guess),
    firstAtoms: 0,
    symbolIndex: new Map<number, number>(),
    symbols: [],
    nameSuffix: new Map<number, number>(),
    atomKeyStrings: new Map<number, string>(),
    names: new Float64Array(64),
    nameCount: 0,
    nameCounts: new Map<number, number>(),
  };
}

/**
 * Element symbol (index + 1) by the raw bytes of columns 77-78, for the scan under way: the
 * trimmed symbol is a function of those two bytes, so one array read replaces a trim and a Map
 * lookup per atom. Each scan clears what the previous one set.
 */
const symbolByColumns = new Uint16Array(65536);
const symbolColumnsUsed: number[] = [];

/** Room for twice as many atom lines in every per-atom array of the scan. */
function growAtoms(st: ScanState): void {
  const size = st.atomLines.length * 2;
  const grow = <T extends Int32Array | Uint8Array | Float32Array | Float64Array>(a: T, make: (n: number) => T): T => {
    const next = make(size);
    next.set(a);
    return next;
  };
  st.atomLines = grow(st.atomLines, (k) => new Int32Array(k));
  st.atomLength = grow(st.atomLength, (k) => new Uint8Array(k));
  st.xs = grow(st.xs, (k) => new Float32Array(k));
  st.ys = grow(st.ys, (k) => new Float32Array(k));
  st.zs = grow(st.zs, (k) => new Float32Array(k));
  st.elements = grow(st.elements, (k) => new Uint8Array(k));
  st.keys = grow(st.keys, (k) => new Float64Array(k));
}

/**
 * The one pass over the lines, in a function of its own so the optimiser keeps it whatever the
 * later phases do. Returns a decline reason, or ''. The per-atom arrays are written through
 * locals (a method call per value cost more than the value's parsing).
 */
function scanLines(b: Uint8Array, minLineLength: number, modelsNormalised: boolean, st: ScanState): string {
  for (const k of symbolColumnsUsed) symbolByColumns[k] = 0;
  symbolColumnsUsed.length = 0;
  // Buffer's indexOf finds a byte natively; a Uint8Array's goes through a slower generic path.
  const buffer = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const n = b.length;
  let pos = 0;
  let lineNo = -1;
  let atomLines = st.atomLines;
  let atomLength = st.atomLength;
  let xs = st.xs;
  let ys = st.ys;
  let zs = st.zs;
  let elements = st.elements;
  let keys = st.keys;
  let atoms = st.atoms;
  let firstAtoms = st.firstAtoms;
  const names = st.names;
  while (pos < n) {
    lineNo++;
    let nl = buffer.indexOf(10, pos);
    if (nl < 0) nl = n;
    const s = pos;
    const e = nl > s && b[nl - 1] === 13 ? nl - 1 : nl;
    pos = nl + 1;
    const c0 = b[s];
    // startsWith(b, s, e, 'ATOM  ') or 'HETATM', spelled out: the scan's most frequent test.
    if (
      (c0 === 65 && b[s + 1] === 84 && b[s + 2] === 79 && b[s + 3] === 77 && b[s + 4] === SP && b[s + 5] === SP && e - s >= 6) ||
      (c0 === 72 && b[s + 1] === 69 && b[s + 2] === 84 && b[s + 3] === 65 && b[s + 4] === 84 && b[s + 5] === 77 && e - s >= 6)
    ) {
      st.seqresOpen = false;
      st.compndOpen = false;
      st.hetnamOpen = false;
      const length = e - s;
      if (length < minLineLength) return scanEnd(st, atoms, firstAtoms, 'atom line too short');
      if (st.endFrames && !st.frameOpen) {
        // A new frame: a new model, as the MODEL record the reference would insert here starts one.
        st.frameOpen = true;
        if (st.frames++ > 0) {
          st.modelNum++;
          st.modelStarts.push(atoms);
        }
      }
      if (!st.modelNum) {
        st.modelNum = 1;
        st.modelStarts.push(atoms);
      }
      if (!st.normInModel && st.normModel > 0 && !modelsNormalised) return scanEnd(st, atoms, firstAtoms, MODEL_REWRITE);
      if (st.sawEndLine && !st.anyModelLine) st.endThenAtoms = true;
      if (!st.wide && nl - s > 21 && b[s + 20] !== SP) st.wide = true;
      const ins = b[s + 26];
      if (!st.anyInsCode && ins !== SP && ins !== 46 && ins !== 63) st.anyInsCode = true;
      if (st.occupancyBlank && trimStart(b, s + 54, s + 60) < trimEnd(b, s + 54, s + 60)) st.occupancyBlank = false;
      if (atoms === atomLines.length) {
        growAtoms(st);
        atomLines = st.atomLines;
        atomLength = st.atomLength;
        xs = st.xs;
        ys = st.ys;
        zs = st.zs;
        elements = st.elements;
        keys = st.keys;
      }
      const i = atoms;
      const p = st.prevLine;
      // A new run?
      if (
        st.terPending ||
        p < 0 ||
        st.modelNum !== st.prevModel ||
        b[p + 21] !== b[s + 21] ||
        b[p + 26] !== ins ||
        b[p + 22] !== b[s + 22] ||
        b[p + 23] !== b[s + 23] ||
        b[p + 24] !== b[s + 24] ||
        b[p + 25] !== b[s + 25] ||
        b[p + 17] !== b[s + 17] ||
        b[p + 18] !== b[s + 18] ||
        b[p + 19] !== b[s + 19] ||
        b[p + 20] !== b[s + 20]
      ) {
        st.runStart.push(i);
        st.runTer.push(st.terPending ? 1 : 0);
        st.runModel.push(st.modelNum);
        // What the later phases read of a run, taken now that the line is in cache.
        const cts = trimStart(b, s + 17, s + 21);
        const cte = trimEnd(b, cts, s + 21);
        const compKey = smallCode(b, cts, cte);
        let comp = st.compIndex.get(compKey);
        if (comp === undefined) {
          comp = st.compNames.length;
          st.compNames.push(tokenStr(latin1(b, cts, cte)));
          st.compIndex.set(compKey, comp);
        }
        st.runComp.push(comp);
        st.runAsym.push(b[s + 21]);
        st.runIns.push(ins);
        const sts = trimStart(b, s + 22, s + 26);
        const ste = trimEnd(b, sts, s + 26);
        st.runSeqInt.push(parseIntBytes(b, sts, ste) || 0);
        st.runSeqTok.push(code(b, sts, ste));
      }
      st.terPending = false;
      if (st.firstModel === 0) st.firstModel = st.modelNum;
      if (st.modelNum === st.firstModel) {
        const at = firstAtoms;
        if (!coordinateInto(b, s + 30, xs, at) || !coordinateInto(b, s + 38, ys, at) || !coordinateInto(b, s + 46, zs, at))
          return scanEnd(st, atoms, firstAtoms, COORDINATES_NOT_NUMBERS);
        // Element: columns 77-78 when the line reaches them and they are not blank, else guessed from the name.
        let symbol = -1;
        const columns = length >= 78 ? (b[s + 76] << 8) | b[s + 77] : -1;
        if (columns >= 0) symbol = symbolByColumns[columns] - 1;
        if (symbol < 0) {
          let ts = s;
          let te = s;
          if (length >= 78) {
            ts = trimStart(b, s + 76, s + 78);
            te = trimEnd(b, ts, s + 78);
          }
          if (ts >= te) {
            guessElement(b, s + 12, s + 16);
            ts = guessStart;
            te = guessEnd;
          }
          // A small integer (no boxing as a Map key): symbols are at most 2 characters, guesses too.
          const symbolCode = te - ts <= 2 ? ((te - ts) << 16) | (te > ts ? b[ts] << 8 : 0) | (te - ts === 2 ? b[ts + 1] : 0) : -1 - code(b, ts, te);
          let known = st.symbolIndex.get(symbolCode);
          if (known === undefined) {
            known = st.symbols.length;
            if (known > 255) return scanEnd(st, atoms, firstAtoms, 'too many distinct element symbols');
            st.symbols.push(ElementSymbol(tokenStr(latin1(b, ts, te))) as string);
            st.symbolIndex.set(symbolCode, known);
          }
          symbol = known;
          // Columns that trim to a symbol give that symbol every time (blank ones are guessed per name).
          if (columns >= 0 && ts >= s + 76) {
            symbolByColumns[columns] = symbol + 1;
            symbolColumnsUsed.push(columns);
          }
        }
        elements[at] = symbol;
        // A residue for getAtomSite ends where the chain, residue number (as an integer) or insertion code changes.
        if (
          p >= 0 &&
          i > 0 &&
          ((b[p + 21] !== b[s + 21] && chainStr(b, p) !== chainStr(b, s)) ||
            (b[p + 26] !== ins && insStr(b, p) !== insStr(b, s)) ||
            ((b[p + 22] !== b[s + 22] || b[p + 23] !== b[s + 23] || b[p + 24] !== b[s + 24] || b[p + 25] !== b[s + 25]) && seqNumber(b, p) !== seqNumber(b, s)))
        ) {
          st.nameCount = 0;
          // Map.clear() allocates a new table: only when the map was used (long residues, repeats).
          if (st.nameCounts.size > 0) st.nameCounts.clear();
        }
        const nts = trimStart(b, s + 12, s + 16);
        const nte = trimEnd(b, nts, s + 16);
        const t = nte - nts === 1 && (b[nts] === 46 || b[nts] === 63) ? 0 : code(b, nts, nte);
        let seen = false;
        const nameCount = st.nameCount;
        if (nameCount < 64) {
          for (let k = 0; k < nameCount; k++) {
            if (names[k] === t) {
              seen = true;
              break;
            }
          }
          if (!seen) {
            names[nameCount] = t;
            st.nameCount = nameCount + 1;
            if (nameCount + 1 === 64) for (const v of names) st.nameCounts.set(v, st.nameCounts.get(v) ?? 0);
          }
        } else {
          seen = st.nameCounts.has(t);
          if (!seen) st.nameCounts.set(t, 0);
        }
        const alt = b[s + 16];
        const altCode = alt === SP || alt === 46 || alt === 63 ? 0 : alt + 1;
        if (altCode) st.anyAltloc = true;
        let nameCode = t;
        if (seen) {
          const next = (st.nameCounts.get(t) ?? 0) + 1;
          st.nameCounts.set(t, next);
          st.nameSuffix.set(i, next);
          const label = `${tokenStr(latin1(b, nts, nte))}_${next}`;
          if (label.length > 4) {
            st.atomKeyStrings.set(i, `${label}\u0000${altCode ? String.fromCharCode(alt) : ''}`);
            nameCode = -1;
          } else nameCode = stringCode(label);
        }
        keys[at] = nameCode * 512 + altCode;
        firstAtoms = at + 1;
      } else if (!coordinateBytesOk(b, s + 30) || !coordinateBytesOk(b, s + 38) || !coordinateBytesOk(b, s + 46))
        return scanEnd(st, atoms, firstAtoms, COORDINATES_NOT_NUMBERS);
      atomLines[i] = s;
      atomLength[i] = length > 255 ? 255 : length;
      atoms = i + 1;
      st.prevLine = s;
      st.prevModel = st.modelNum;
      continue;
    }
    st.atoms = atoms;
    const why = otherRecord(b, s, e, nl, c0, lineNo, modelsNormalised, st);
    if (why) return scanEnd(st, atoms, firstAtoms, why);
  }
  return scanEnd(st, atoms, firstAtoms, '');
}

/** The counts the scan kept in locals, back into its state; returns `why`. */
function scanEnd(st: ScanState, atoms: number, firstAtoms: number, why: string): string {
  st.atoms = atoms;
  st.firstAtoms = firstAtoms;
  return why;
}

/**
 * The records other than ATOM/HETATM, in a function of its own: rare next to atom lines, and
 * kept out of scanLines so the optimiser compiles that loop smaller (and recompiles it less).
 */
function otherRecord(b: Uint8Array, s: number, e: number, nl: number, c0: number, lineNo: number, modelsNormalised: boolean, st: ScanState): string {
  const isSeqres = c0 === 83 && startsWith(b, s, e, 'SEQRES');
  const isCompnd = c0 === 67 && startsWith(b, s, e, 'COMPND');
  const isHetnam = c0 === 72 && startsWith(b, s, e, 'HETNAM');
  // Mol* reads SEQRES, COMPND and HETNAM in blocks of consecutive lines; only the first SEQRES block counts.
  if (st.seqresOpen && !isSeqres) st.seqresOpen = false;
  if (st.compndOpen && !isCompnd) st.compndOpen = false;
  if (st.hetnamOpen && !isHetnam) st.hetnamOpen = false;
  if (isHetnam) {
    if (!st.hetnamOpen) st.hetnamBlocks.push([]);
    st.hetnamOpen = true;
    st.hetnamBlocks[st.hetnamBlocks.length - 1].push(latin1(b, s, e));
  } else if (c0 === 72) {
    if (startsWith(b, s, e, 'HEADER')) {
      const line = latin1(b, s, e);
      st.idCode = line.substring(62, 66).trim() || undefined;
      st.depDate = line.substring(50, 59).trim() || undefined;
    }
  } else if (isSeqres) {
    if (!st.seqresLines) {
      st.seqresLines = [];
      st.seqresOpen = true;
    }
    if (st.seqresOpen) st.seqresLines.push(latin1(b, s, e));
  } else if (isCompnd) {
    if (!st.compndOpen) st.compndBlocks.push([]);
    st.compndOpen = true;
    st.compndBlocks[st.compndBlocks.length - 1].push(latin1(b, s, e));
  } else if (c0 === 77) {
    if (startsWith(b, s, e, 'MODEL')) {
      if (st.endFrames) {
        if (st.frames > 1) return RESCAN_WITHOUT_END_FRAMES;
        st.endFrames = false;
      }
      st.anyModelLine = true;
      st.normModel++;
      st.normInModel = true;
      // The reference rewrites MODEL lines without a number (normalisePdbModels).
      let k = s + 5;
      let ok = true;
      for (; k < s + 10; k++) if (b[k] !== SP || k >= nl) ok = false;
      while (k < nl && isSpace(b[k])) k++;
      if ((!ok || !(b[k] >= 48 && b[k] <= 57) || k >= nl) && !modelsNormalised) {
        // normalisePdbModels gives it a number. When it starts with "MODEL " Mol* starts a model at it
        // either way, so only the warning differs; otherwise (a bare "MODEL") leave the file to the rewrite.
        if (!startsWith(b, s, e, 'MODEL ')) return MODEL_REWRITE;
        st.unnumberedModels.push(lineNo + 1, st.normModel);
        let blank = true;
        for (let q = s + 5; q < nl; q++) if (!isSpace(b[q])) blank = false;
        if (blank) st.bareModelLine = true;
      }
      if (startsWith(b, s, e, 'MODEL ')) {
        st.modelNum++;
        st.modelStarts.push(st.atoms);
      }
    }
  } else if (c0 === 69) {
    if (startsWith(b, s, e, 'ENDMDL')) {
      st.normInModel = false;
      st.endmdlLine = true;
    } else if (startsWith(b, s, e, 'END')) {
      let blank = true;
      for (let k = s + 3; k < nl; k++) if (!isSpace(b[k])) blank = false;
      if (blank) {
        st.sawEndLine = true;
        st.frameOpen = false;
      }
    }
  } else if (c0 === 84) {
    if (startsWith(b, s, e, 'TER')) st.terPending = true;
  } else if (c0 === 82) {
    if (!st.hasAssemblies && startsWith(b, s, e, 'REMARK 350')) st.hasAssemblies = true;
  }
  return '';
}

// guessElement's result (two numbers; a tuple per atom would be garbage to collect).
let guessStart = 0;
let guessEnd = 0;

/**
 * Reads a PDB file's atoms the way Mol* does. Returns undefined when the file needs something
 * only the reference path does (see the module comment); `minLineLength` is how many columns
 * every atom line must have (54 for the coordinates, 60 when occupancy is read); `modelsNormalised`
 * says the text already went through the reference's MODEL rewrites.
 */
export function readPdbAtoms(bytes: Uint8Array, minLineLength = 54, modelsNormalised = false): PdbAtoms | undefined {
  lastDecline = '';
  const n = bytes.length;
  const b = bytes;
  // Line starts are kept as 32-bit integers.
  if (n >= 2 ** 31) return decline('file too large for 32-bit offsets');
  // A lone carriage return ends a line for Mol* but not for the text checks before it.
  for (let cr = b.indexOf(13); cr >= 0; cr = b.indexOf(13, cr + 1)) {
    if (b[cr + 1] !== 10) return decline('lone carriage return');
  }

  // Frames split at END records as long as no MODEL line is seen; one after a split means the
  // reference does not split: scanned again without.
  let st = newScanState(n);
  st.endFrames = !modelsNormalised;
  let reason = scanLines(b, minLineLength, modelsNormalised, st);
  if (reason === RESCAN_WITHOUT_END_FRAMES) {
    st = newScanState(n);
    reason = scanLines(b, minLineLength, modelsNormalised, st);
  }
  if (reason) return decline(reason);
  const {
    atomLines,
    atomLength,
    modelStarts,
    anyModelLine,
    endThenAtoms,
    wide,
    hasAssemblies,
    anyInsCode,
    occupancyBlank,
    hetnamBlocks,
    compndBlocks,
    idCode,
    depDate,
    runStart,
    runTer,
    runModel,
    xs,
    ys,
    zs,
    elements,
    keys,
    symbols,
    nameSuffix,
    atomKeyStrings,
  } = st;
  let { seqresLines } = st;
  // The reference splits frames at END records when there are no MODEL records (framesSeparatedByEnd),
  // as the scan did. With ENDMDL records too its second rewrite (normalisePdbModels) may add models: left to it.
  const endSeparated = endThenAtoms && !anyModelLine && !modelsNormalised;
  if (endSeparated && st.endmdlLine) return decline(MODEL_REWRITE);
  // Any bare "MODEL" line or ENDMDL makes the reference rewrite the text; the rewrite is a no-op
  // exactly when every MODEL line is numbered and no atom follows ENDMDL outside a model: checked above.
  const total = st.atoms;
  if (total === 0) return decline('no atoms');

  const warnings: Problem[] = [];
  if (endSeparated) {
    warnings.push({
      code: 'frames_separated_by_end',
      message: `The file holds ${st.frames} frames separated by END records (no MODEL records); each frame was read as a model.`,
    });
  }
  // normalisePdbModels rewrites only when the text holds ENDMDL or a bare MODEL line.
  if (st.unnumberedModels.length > 0 && (st.bareModelLine || Buffer.from(b.buffer, b.byteOffset, b.byteLength).indexOf('ENDMDL') >= 0)) {
    for (let k = 0; k < st.unnumberedModels.length; k += 2) {
      const model = st.unnumberedModels[k + 1];
      warnings.push({
        code: 'model_without_number',
        message: `A MODEL record has no model number; it was read as model ${model}.`,
        line: st.unnumberedModels[k],
      });
    }
  }
  if (wide) {
    warnings.push({
      code: 'wide_chain_ids',
      message:
        'Atom records use 2-character chain ids (columns 21-22), which the PDB format does not define; chains were read from column 22 only, so chain and residue counts are low. mmCIF keeps such ids intact.',
    });
    seqresLines = undefined;
  }

  // One parse per block, as Mol* does: a name continued in a later block replaces the earlier one.
  const heteroNames: [string, string][] = hetnamBlocks.flatMap((block) => [...parseHetnam(lineList(block), 0, block.length).entries()]);
  const seqresMap: Map<string, string[]> | undefined = seqresLines ? parseSeqres(lineList(seqresLines), 0, seqresLines.length) : undefined;

  const lineAt = atomLines;
  const runs: Runs = {
    count: runStart.length,
    total,
    start: runStart.array,
    comp: st.runComp.array,
    asym: st.runAsym.array,
    ins: st.runIns.array,
    seqInt: st.runSeqInt.array,
    seqTok: st.runSeqTok.array,
    ter: runTer.array,
    model: runModel.array,
    compNames: st.compNames,
  };
  // Each phase below is a function of its own: a large file's loops are optimised while they run
  // (on-stack replacement), and each such compilation covers the whole function the loop is in.
  const built = entitiesOfRuns(b, lineAt, runs, heteroNames, compndBlocks, seqresMap, hasAssemblies);
  if (typeof built === 'string') return decline(built);
  const { runEntity, componentBuilder, entityBuilder, labels } = built;

  // The first model only from here on (the summary and the diff read the first model).
  const atomCount = st.firstAtoms;
  // Mol* makes one model per run of equal model numbers: MODEL records without atoms make none.
  let models = 0;
  for (let k = 0; k < modelStarts.length; k++) if ((k + 1 < modelStarts.length ? modelStarts[k + 1] : total) > modelStarts[k]) models++;
  let firstRuns = 0;
  while (firstRuns < runs.count && runs.start[firstRuns] < atomCount) firstRuns++;

  // label_asym_id (the helper's second pass, after clear()) and label_seq_id (getAtomSite).
  const useLinear = !!seqresMap || anyInsCode;
  const alignments = seqresMap ? alignChains(runs, firstRuns, seqresMap) : new Map<string, number[]>();
  const { runLabel, runSeq } = labelRuns(runs, firstRuns, alignments, useLinear, labels);
  // Without linear label_seq_ids Mol* substitutes auth_seq_id for label_seq_id (getNormalizedAtomSite).
  if (!useLinear && !authSeqAsLabels(runs, firstRuns, runSeq)) return decline('residue number missing');

  const runOrder = sortRuns(runEntity, runLabel, runSeq, firstRuns);
  const entityTypes = (entityBuilder as unknown as { types: string[] }).types;
  const entityIds = (entityBuilder as unknown as { ids: string[] }).ids;
  const typeOfEntity = new Map<string, string>();
  for (let k = 0; k < entityIds.length; k++) typeOfEntity.set(entityIds[k], entityTypes[k]);
  const { residueOffsets, residueCount, chainOffsets, chainCount, residueEntityType, order } = cutHierarchy(
    runs,
    firstRuns,
    atomCount,
    runOrder,
    runEntity,
    runLabel,
    runSeq,
    useLinear,
    typeOfEntity,
  );
  // The per-atom arrays the summary reads atom by atom go into Mol*'s order, in place (memory stays flat).
  if (order) permuteInPlace(order, xs, ys, zs, elements, keys);

  return {
    bytes,
    atomCount,
    order,
    lineStart: lineAt.subarray(0, total),
    lineLength: atomLength.subarray(0, total),
    x: xs.subarray(0, atomCount),
    y: ys.subarray(0, atomCount),
    z: zs.subarray(0, atomCount),
    element: elements.subarray(0, atomCount),
    symbols,
    residueOffsets,
    residueCount,
    chainOffsets,
    chainCount,
    residueEntityType,
    entityCount: entityIds.length,
    componentName: (comp) => componentBuilder.get(comp)?.name,
    models,
    nameSuffix,
    atomKeys: keys.subarray(0, atomCount),
    atomKeyStrings,
    occupancyBlank,
    hasAltlocs: st.anyAltloc,
    warnings,
    header: { idCode, depDate },
  };
}

/** The runs the scan found (every model), as the phases after it read them. */
interface Runs {
  count: number;
  /** Atom lines in all (the end of the last run). */
  total: number;
  start: Int32Array;
  comp: Int32Array;
  asym: Uint8Array;
  ins: Uint8Array;
  seqInt: Int32Array;
  seqTok: Float64Array;
  ter: Uint8Array;
  model: Int32Array;
  compNames: string[];
}

const runEnd = (runs: Runs, r: number): number => (r + 1 < runs.count ? runs.start[r + 1] : runs.total);
const asymOfRun = (runs: Runs, r: number): string => (runs.asym[r] === 46 || runs.asym[r] === 63 ? '' : CHARS[runs.asym[r]]);
const insOfRun = (runs: Runs, r: number): string => (runs.ins[r] === SP || runs.ins[r] === 46 || runs.ins[r] === 63 ? '' : CHARS[runs.ins[r]]);

/** Mol*'s line-list input to its HETNAM, SEQRES and COMPND parsers. */
const lineList = (list: string[]) => {
  const data = list.join('\n');
  const indices: number[] = [];
  let at = 0;
  for (const l of list) {
    indices.push(at, at + l.length);
    at += l.length + 1;
  }
  return { data, indices, count: list.length } as never;
};

/**
 * Components and entities, over every model's atoms in file order (pdbToMmCif): the entity of
 * each run, and the label_asym_id helper in the state this pass leaves it (the next pass goes on
 * from it, as Mol*'s does). A string: the reference's decline.
 */
function entitiesOfRuns(
  b: Uint8Array,
  lineAt: Int32Array,
  runs: Runs,
  heteroNames: [string, string][],
  compndBlocks: string[][],
  seqresMap: Map<string, string[]> | undefined,
  hasAssemblies: boolean,
): { runEntity: string[]; componentBuilder: ComponentBuilder; entityBuilder: EntityBuilder; labels: LabelAsym } | string {
  const total = runs.total;
  const componentBuilder = new ComponentBuilder(
    { rowCount: total, value: (i: number) => seqNumber(b, lineAt[i]) } as never,
    {
      rowCount: total,
      value: (i: number) => {
        const s = lineAt[i];
        const ts = trimStart(b, s + 12, s + 16);
        return latin1(b, ts, trimEnd(b, ts, s + 16));
      },
    } as never,
  );
  componentBuilder.setNames(heteroNames);
  const entityBuilder = new EntityBuilder();
  for (const block of compndBlocks) entityBuilder.setCompounds(parseCmpnd(lineList(block), 0, block.length));
  if (seqresMap) entityBuilder.setSeqres(seqresMap);
  entityBuilder.setNames(heteroNames);
  const labels = new LabelAsym(hasAssemblies);
  const runEntity = runEntities(runs, componentBuilder, entityBuilder, labels);
  if (seqresMap) {
    // The reference fails here when SEQRES names chains but no atom is a polymer: leave that to it.
    try {
      getEntityPolySeq(seqresMap, (chainId: string) => entityBuilder.getEntityIdForChain(chainId));
    } catch {
      return 'SEQRES without polymer atoms';
    }
  }
  return { runEntity, componentBuilder, entityBuilder, labels };
}

function runEntities(runs: Runs, componentBuilder: ComponentBuilder, entityBuilder: EntityBuilder, labels: LabelAsym): string[] {
  const moleculeTypes = new Map<string, ReturnType<typeof getMoleculeType>>();
  // getEntityId gives the same entity for the same label_asym_id and component every time: worked out once per pair.
  const entities = new Map<string, Map<string, string>>();
  const runEntity: string[] = new Array(runs.count);
  const { start, compNames, comp: runComp, model, ter } = runs;
  for (let r = 0; r < runs.count; r++) {
    const i = start[r];
    const comp = compNames[runComp[r]];
    let moleculeType = moleculeTypes.get(comp);
    if (moleculeType === undefined) {
      // The first atom of a component decides its type (ComponentBuilder.add reads its residue's atom names).
      moleculeType = getMoleculeType(componentBuilder.add(comp, i).type, comp);
      moleculeTypes.set(comp, moleculeType);
    }
    const asym = labels.run(asymOfRun(runs, r), model[r], ter[r] === 1, runEnd(runs, r) - i);
    let byComp = entities.get(asym);
    if (!byComp) {
      byComp = new Map();
      entities.set(asym, byComp);
    }
    let entity = byComp.get(comp);
    if (entity === undefined) {
      entity = entityBuilder.getEntityId(comp, moleculeType, asym) as string;
      byComp.set(comp, entity);
    }
    runEntity[r] = entity;
  }
  return runEntity;
}

/** Mol*'s SEQRES alignment of each chain's observed residues (first model), by chain. */
function alignChains(runs: Runs, firstRuns: number, seqresMap: Map<string, string[]>): Map<string, number[]> {
  const alignments = new Map<string, number[]>();
  const observed = new Map<string, string[]>();
  let prevChain = '';
  let prevSeqId = -99999;
  let prevIns = '___';
  for (let r = 0; r < firstRuns; r++) {
    const chain = asymOfRun(runs, r);
    const seqId = runs.seqInt[r];
    const ins = insOfRun(runs, r);
    if (chain !== prevChain || seqId !== prevSeqId || ins !== prevIns) {
      let list = observed.get(chain);
      if (!list) {
        list = [];
        observed.set(chain, list);
      }
      list.push(runs.compNames[runs.comp[r]]);
      prevChain = chain;
      prevSeqId = seqId;
      prevIns = ins;
    }
  }
  // Identical chains (homo-oligomers) align the same way: once.
  const done = new Map<string, number[]>();
  for (const [chain, list] of observed) {
    const seqres = seqresMap.get(chain);
    if (seqres && seqres.length > 0) {
      const key = JSON.stringify([seqres, list]);
      let alignment = done.get(key);
      if (!alignment) {
        alignment = alignToSeqres(seqres, list);
        done.set(key, alignment);
      }
      alignments.set(chain, alignment);
    }
  }
  return alignments;
}

/** label_asym_id (the helper's second pass, after clear()) and label_seq_id (getAtomSite) of the first model's runs. */
function labelRuns(
  runs: Runs,
  firstRuns: number,
  alignments: Map<string, number[]>,
  useLinear: boolean,
  labels: LabelAsym,
): { runLabel: string[]; runSeq: Int32Array } {
  labels.clear();
  const runLabel: string[] = new Array(firstRuns);
  const runSeq = new Int32Array(firstRuns);
  const { start, model: runModel, seqInt, ter } = runs;
  let currModel = runModel[0];
  let currAsym = asymOfRun(runs, 0);
  let currSeq = seqInt[0];
  let currIns = insOfRun(runs, 0);
  let alignment = alignments.get(currAsym);
  let residueIdx = 0;
  const initial = (seqId: number) => {
    const pos0 = alignment ? alignment[0] : UNALIGNED;
    return pos0 !== UNALIGNED ? pos0 : useLinear ? 1 : seqId;
  };
  let label = initial(currSeq);
  for (let r = 0; r < firstRuns; r++) {
    const i = start[r];
    const model = runModel[r];
    const asym = asymOfRun(runs, r);
    const seqId = seqInt[r];
    const ins = insOfRun(runs, r);
    if (model !== currModel) {
      currModel = model;
      currAsym = asym;
      currSeq = seqId;
      currIns = ins;
      alignment = alignments.get(asym);
      residueIdx = 0;
      label = initial(currSeq);
    } else if (currAsym !== asym) {
      currAsym = asym;
      currSeq = seqId;
      currIns = ins;
      alignment = alignments.get(asym);
      residueIdx = 0;
      label = initial(seqId);
    } else if (currSeq !== seqId || currIns !== ins) {
      residueIdx++;
      const aligned = alignment && residueIdx < alignment.length ? alignment[residueIdx] : UNALIGNED;
      if (aligned !== UNALIGNED) label = aligned;
      else if (currSeq === label && !useLinear) label = seqId;
      else label += 1;
      currSeq = seqId;
      currIns = ins;
    }
    runLabel[r] = labels.run(asym, model, ter[r] === 1, runEnd(runs, r) - i);
    runSeq[r] = label;
  }
  return { runLabel, runSeq };
}

/**
 * Without linear label_seq_ids Mol* substitutes auth_seq_id for label_seq_id
 * (getNormalizedAtomSite). False when a residue number is missing: blank, '.' or '?' (sortAtomSite's
 * check of whether to sort would read another atom's value kind).
 */
function authSeqAsLabels(runs: Runs, firstRuns: number, runSeq: Int32Array): boolean {
  const dot = stringCode('.');
  const question = stringCode('?');
  for (let r = 0; r < firstRuns; r++) {
    const token = runs.seqTok[r];
    if (token === 0 || token === dot || token === question) return false;
    runSeq[r] = runs.seqInt[r];
  }
  return true;
}

/**
 * Mol*'s sortAtomSite: atoms grouped by entity, then by chain (first appearance), then by
 * label_seq_id. A stable sort of the runs gives the same order; undefined when the runs are in it.
 */
function sortRuns(runEntity: string[], runLabel: string[], runSeq: Int32Array, firstRuns: number): Int32Array | undefined {
  const entityRank = new Map<string, number>();
  const chainRank = new Map<string, number>();
  const entityKey = new Int32Array(firstRuns);
  const chainKey = new Int32Array(firstRuns);
  let lastEntity = '';
  let lastLabel = '';
  let lastChainRank = -1;
  for (let r = 0; r < firstRuns; r++) {
    const entity = runEntity[r];
    let er = entityRank.get(entity);
    if (er === undefined) {
      er = entityRank.size;
      entityRank.set(entity, er);
    }
    entityKey[r] = er;
    if (r > 0 && entity === lastEntity && runLabel[r] === lastLabel) chainKey[r] = lastChainRank;
    else {
      const key = `${entity}\u0000${runLabel[r]}`;
      let cr = chainRank.get(key);
      if (cr === undefined) {
        cr = chainRank.size;
        chainRank.set(key, cr);
      }
      chainKey[r] = cr;
      lastEntity = entity;
      lastLabel = runLabel[r];
      lastChainRank = cr;
    }
  }
  let sorted = true;
  for (let r = 1; r < firstRuns && sorted; r++) {
    const a = r - 1;
    if (entityKey[a] > entityKey[r] || (entityKey[a] === entityKey[r] && (chainKey[a] > chainKey[r] || (chainKey[a] === chainKey[r] && runSeq[a] > runSeq[r]))))
      sorted = false;
  }
  if (sorted) return undefined;
  const list = Array.from({ length: firstRuns }, (_, r) => r);
  // Chain ranks are by first appearance over the file; within an entity that is also the order of first appearance within it.
  list.sort((a, c) => entityKey[a] - entityKey[c] || chainKey[a] - chainKey[c] || runSeq[a] - runSeq[c]);
  return Int32Array.from(list);
}

/**
 * The residue and chain cuts (findHierarchyOffsets) over the sorted runs, as positions in Mol*'s
 * order (each with the end appended), the entity type of each residue's chain, and the file index
 * of the atom at each position when that order is not the file's.
 */
function cutHierarchy(
  runs: Runs,
  firstRuns: number,
  atomCount: number,
  runOrder: Int32Array | undefined,
  runEntity: string[],
  runLabel: string[],
  runSeq: Int32Array,
  useLinear: boolean,
  typeOfEntity: Map<string, string>,
) {
  const residueOffsets = new Growable(Math.max(16, firstRuns + 1));
  const chainOffsets = new Growable(64);
  const residueEntityType: (string | undefined)[] = [];
  const { seqTok, ins: runIns } = runs;
  const order = runOrder ? new Int32Array(atomCount) : undefined;
  let at = 0;
  let prevRun = -1;
  let chainType: string | undefined;
  for (let k = 0; k < firstRuns; k++) {
    const r = runOrder ? runOrder[k] : k;
    const i0 = runs.start[r];
    const end = runEnd(runs, r);
    if (prevRun < 0) {
      residueOffsets.push(at);
      chainOffsets.push(at);
      chainType = typeOfEntity.get(runEntity[r]);
      residueEntityType.push(chainType);
    } else {
      const p = prevRun;
      const newChain = runEntity[p] !== runEntity[r] || runLabel[p] !== runLabel[r];
      const newResidue = newChain || (useLinear && runSeq[p] !== runSeq[r]) || seqTok[p] !== seqTok[r] || tokenIns(runIns[p]) !== tokenIns(runIns[r]);
      if (newChain) {
        chainOffsets.push(at);
        chainType = typeOfEntity.get(runEntity[r]);
      }
      if (newResidue) {
        residueOffsets.push(at);
        residueEntityType.push(chainType);
      }
    }
    if (order) for (let i = i0; i < end; i++) order[at++] = i;
    else at += end - i0;
    prevRun = r;
  }
  const residueCount = residueOffsets.length;
  residueOffsets.push(atomCount);
  const chainCount = chainOffsets.length;
  chainOffsets.push(atomCount);
  return {
    residueOffsets: residueOffsets.array.subarray(0, residueCount + 1),
    residueCount,
    chainOffsets: chainOffsets.array.subarray(0, chainCount + 1),
    chainCount,
    residueEntityType,
    order,
  };
}

/** One-character strings, made once. */
const CHARS = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c));

/**
 * a[k] = a[order[k]] for each array, through one scratch buffer the size of the widest array
 * (memory stays near flat). `order` is made of runs of consecutive indices, so the reads stay local.
 */
function permuteInPlace(order: Int32Array, x: Float32Array, y: Float32Array, z: Float32Array, element: Uint8Array, key: Float64Array): void {
  const n = order.length;
  const scratch = new ArrayBuffer(n * 8);
  const wide = new Float64Array(scratch, 0, n);
  wide.set(key.subarray(0, n));
  for (let k = 0; k < n; k++) key[k] = wide[order[k]];
  const single = new Float32Array(scratch, 0, n);
  for (const a of [x, y, z]) {
    single.set(a.subarray(0, n));
    for (let k = 0; k < n; k++) a[k] = single[order[k]];
  }
  const bytes = new Uint8Array(scratch, 0, n);
  bytes.set(element.subarray(0, n));
  for (let k = 0; k < n; k++) element[k] = bytes[order[k]];
}

/** The insertion code token as Mol*'s token column holds it: empty for a blank column (for comparing tokens). */
const tokenIns = (c: number): number => (c === SP ? -1 : c);

function insStr(b: Uint8Array, s: number): string {
  const c = b[s + 26];
  return c === SP || c === 46 || c === 63 ? '' : CHARS[c];
}

/** The chain id as Mol* reads it: column 22 alone ('' for '.' and '?'). */
function chainStr(b: Uint8Array, s: number): string {
  const c = b[s + 21];
  return c === 46 || c === 63 ? '' : CHARS[c];
}

/** code() for tokens of up to 3 bytes as a small integer (no boxing as a Map key); longer ones as negative codes. */
function smallCode(b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  if (len > 3) return -1 - code(b, s, e);
  let v = len << 24;
  if (len > 0) v |= b[s] << 16;
  if (len > 1) v |= b[s + 1] << 8;
  if (len > 2) v |= b[s + 2];
  return v;
}

/** The residue number as Mol*'s integer column reads it. */
function seqNumber(b: Uint8Array, s: number): number {
  const ts = trimStart(b, s + 22, s + 26);
  return parseIntBytes(b, ts, trimEnd(b, ts, s + 26)) || 0;
}

/** Mol*'s alignCompIdsToSeqres (pdb/atom-site.js): 1-based SEQRES positions of observed residues. */
function alignToSeqres(seqres: string[], observed: string[]): number[] {
  const n = observed.length;
  if (n === 0) return [];
  if (seqres.length === 0) return new Array(n).fill(UNALIGNED);
  const { aliA, aliB } = alignSequences(observed, seqres);
  const result = new Array(n).fill(UNALIGNED);
  let o = 0;
  let q = 0;
  for (let k = 0; k < aliA.length; k++) {
    const hasObs = aliA[k] !== '-';
    const hasSeqres = aliB[k] !== '-';
    if (hasObs && hasSeqres) {
      result[o] = q + 1;
      o++;
      q++;
    } else if (hasObs) o++;
    else q++;
  }
  return result;
}

/** Per-atom readers over the atoms in Mol*'s order (position → file index through `order`). */
export function pdbAtomReaders(atoms: PdbAtoms) {
  const { bytes: b, lineStart, lineLength, nameSuffix, order, x, y, z, element, symbols, atomKeys, atomKeyStrings } = atoms;
  const comps = new Map<number, string>();
  const alts = new Map<number, string>();
  const file = order ? (i: number) => order[i] : (i: number) => i;
  const altId = (i: number): string => {
    const c = b[lineStart[file(i)] + 16];
    if (c === SP) return '';
    let v = alts.get(c);
    if (v === undefined) {
      v = tokenStr(String.fromCharCode(c));
      alts.set(c, v);
    }
    return v;
  };
  const authAtomName = (i: number): string => {
    const s = lineStart[file(i)];
    const ts = trimStart(b, s + 12, s + 16);
    return tokenStr(latin1(b, ts, trimEnd(b, ts, s + 16)));
  };
  const atomName = (i: number): string => {
    const suffix = nameSuffix.get(file(i));
    return suffix === undefined ? authAtomName(i) : `${authAtomName(i)}_${suffix}`;
  };
  const compId = (i: number): string => {
    const s = lineStart[file(i)];
    const ts = trimStart(b, s + 17, s + 21);
    const te = trimEnd(b, ts, s + 21);
    const k = code(b, ts, te);
    let v = comps.get(k);
    if (v === undefined) {
      v = tokenStr(latin1(b, ts, te));
      comps.set(k, v);
    }
    return v;
  };
  return {
    typeSymbol: (i: number) => symbols[element[i]],
    altId,
    atomName,
    authAtomName,
    compId,
    x: (i: number) => x[i],
    y: (i: number) => y[i],
    z: (i: number) => z[i],
    authSeqId: (i: number): number => seqNumber(b, lineStart[file(i)]),
    insCode: (i: number): string => insStr(b, lineStart[file(i)]),
    chainName: (i: number): string => chainStr(b, lineStart[file(i)]),
    bFactor: (i: number): number => {
      const f = file(i);
      return lineLength[f] >= 66 ? fieldFloat(b, lineStart[f] + 60, lineStart[f] + 66) : 0;
    },
    occupancy: (i: number): number => (atoms.occupancyBlank ? 1 : fieldFloat(b, lineStart[file(i)] + 54, lineStart[file(i)] + 60)),
    atomKey: (i: number): number | string => (atomKeys[i] < 0 ? (atomKeyStrings.get(file(i)) as string) : atomKeys[i]),
  };
}

/** Mol*'s guessElementSymbolTokens over bytes: [start, end) of the guessed symbol. */
function guessElement(b: Uint8Array, start: number, end: number): void {
  let s = start;
  let e = end - 1;
  let c = b[s];
  while ((c === SP || (c >= 48 && c <= 57)) && s <= e) c = b[++s];
  c = b[e];
  while ((c === SP || (c >= 48 && c <= 57)) && e >= s) c = b[--e];
  ++e;
  if (s === e || s + 1 === e) {
    guessStart = s;
    guessEnd = e;
    return;
  }
  c = b[s];
  if (s + 2 === e) {
    const c2 = b[s + 1];
    if (
      ((c === 78 || c === 110) && (c2 === 65 || c2 === 97)) ||
      ((c === 67 || c === 99) && (c2 === 76 || c2 === 108)) ||
      ((c === 70 || c === 102) && (c2 === 69 || c2 === 101)) ||
      ((c === 83 || c === 115) && (c2 === 73 || c2 === 105)) ||
      ((c === 66 || c === 98) && (c2 === 82 || c2 === 114)) ||
      ((c === 65 || c === 97) && (c2 === 83 || c2 === 115)) ||
      ((c === 76 || c === 108) && (c2 === 73 || c2 === 105)) ||
      ((c === 71 || c === 103) && (c2 === 65 || c2 === 97))
    ) {
      guessStart = s;
      guessEnd = s + 2;
      return;
    }
  }
  guessStart = s;
  guessEnd =
    c === 67 || c === 99 || c === 72 || c === 104 || c === 78 || c === 110 || c === 79 || c === 111 || c === 80 || c === 112 || c === 83 || c === 115
      ? s + 1
      : s;
}

/**
 * The summary's view (summarize.ts) of the atoms read above: the same values as pdbAtomReaders,
 * as a class, so every file's table has one shape and the summary's calls one target each (a
 * literal of fresh closures per file made the optimised summary start over).
 */
class PdbAtomTable implements AtomTable {
  readonly atomCount: number;
  readonly residueCount: number;
  readonly residueOffsets: Int32Array;
  readonly chainCount: number;
  readonly entityCount: number;
  readonly coordinates: { x: Float32Array; y: Float32Array; z: Float32Array };
  readonly symbolIndex: { index: Uint8Array; symbols: readonly string[] };
  readonly hasAltlocs: boolean;
  readonly atomKeys: Float64Array;
  private readonly b: Uint8Array;
  private readonly lineStart: Int32Array;
  private readonly order: Int32Array | undefined;
  private readonly comps = new Map<number, string>();
  private readonly alts = new Map<number, string>();

  constructor(private readonly atoms: PdbAtoms) {
    this.atomCount = atoms.atomCount;
    this.residueCount = atoms.residueCount;
    this.residueOffsets = atoms.residueOffsets;
    this.chainCount = atoms.chainCount;
    this.entityCount = atoms.entityCount;
    this.coordinates = { x: atoms.x, y: atoms.y, z: atoms.z };
    this.symbolIndex = { index: atoms.element, symbols: atoms.symbols };
    this.hasAltlocs = atoms.hasAltlocs;
    this.atomKeys = atoms.atomKeys;
    this.b = atoms.bytes;
    this.lineStart = atoms.lineStart;
    this.order = atoms.order;
  }
  private line(i: number): number {
    return this.lineStart[this.order ? this.order[i] : i];
  }
  typeSymbol(i: number): string {
    return this.atoms.symbols[this.atoms.element[i]];
  }
  altId(i: number): string {
    const c = this.b[this.line(i) + 16];
    if (c === SP) return '';
    let v = this.alts.get(c);
    if (v === undefined) {
      v = tokenStr(String.fromCharCode(c));
      this.alts.set(c, v);
    }
    return v;
  }
  private authAtomName(i: number): string {
    const s = this.line(i);
    const ts = trimStart(this.b, s + 12, s + 16);
    return tokenStr(latin1(this.b, ts, trimEnd(this.b, ts, s + 16)));
  }
  atomName(i: number): string {
    const suffix = this.atoms.nameSuffix.get(this.order ? this.order[i] : i);
    return suffix === undefined ? this.authAtomName(i) : `${this.authAtomName(i)}_${suffix}`;
  }
  compId(i: number): string {
    const s = this.line(i);
    const ts = trimStart(this.b, s + 17, s + 21);
    const te = trimEnd(this.b, ts, s + 21);
    const k = code(this.b, ts, te);
    let v = this.comps.get(k);
    if (v === undefined) {
      v = tokenStr(latin1(this.b, ts, te));
      this.comps.set(k, v);
    }
    return v;
  }
  x(i: number): number {
    return this.atoms.x[i];
  }
  y(i: number): number {
    return this.atoms.y[i];
  }
  z(i: number): number {
    return this.atoms.z[i];
  }
  insCode(r: number): string {
    return insStr(this.b, this.line(this.residueOffsets[r]));
  }
  authSeqId(r: number): number {
    return seqNumber(this.b, this.line(this.residueOffsets[r]));
  }
  private chainOfAtom(atom: number): number {
    const offsets = this.atoms.chainOffsets;
    let lo = 0;
    let hi = this.chainCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid] <= atom) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  chainName(a: number): string {
    return chainStr(this.b, this.line(this.atoms.chainOffsets[this.chainOfAtom(a)]));
  }
  chainNameAt(c: number): string {
    return chainStr(this.b, this.line(this.atoms.chainOffsets[c]));
  }
  entityType(r: number): string | undefined {
    return this.atoms.residueEntityType[r];
  }
  componentName(comp: string): string | undefined {
    return this.atoms.componentName(comp);
  }
  atomKey(i: number): number | string {
    const key = this.atoms.atomKeys[i];
    return key < 0 ? (this.atoms.atomKeyStrings.get(this.order ? this.order[i] : i) as string) : key;
  }
}

/** The summary's view (summarize.ts) of the atoms read above. */
export function pdbAtomTable(atoms: PdbAtoms): AtomTable {
  return new PdbAtomTable(atoms);
}

/**
 * Mol*'s sequence alignment (mol-model/sequence/alignment/alignment.js: affine gaps -11/-1, match
 * 5, mismatch -3, the same traceback and tie-breaking). Mol*'s version fills three matrices of
 * nested JavaScript arrays, which for chains of a thousand residues costs more than reading the
 * rest of the file. Here the forward pass keeps two rows of integer scores and records, per cell, the
 * outcome of each equality the traceback tests (7 bits), so the traceback takes the same path
 * from a byte per cell; and it fills only the band of cells an optimal path can pass through
 * (fillBand). A test compares both on random sequences, short and long.
 */
export function alignSequences(seqA: readonly string[], seqB: readonly string[]): { aliA: string[]; aliB: string[] } {
  const n = seqA.length;
  const m = seqB.length;
  // Identical sequences: the all-match diagonal scores 5 per residue and any path with a gap less,
  // at every diagonal cell, so Mol*'s traceback walks the diagonal. No need to fill the matrix.
  if (n === m && seqA.every((x, k) => x === seqB[k])) return { aliA: [...seqA], aliB: [...seqB] };
  const w = m + 1;
  const ids = new Map<string, number>();
  const idOf = (s: string) => {
    let v = ids.get(s);
    if (v === undefined) {
      v = ids.size;
      ids.set(s, v);
    }
    return v;
  };
  const bq = Int32Array.from(seqB, idOf);
  const inB = ids.size;
  const a = Int32Array.from(seqA, idOf);
  // cA[i]: how many of the first i residues of A occur in B at all (only those can score a match).
  const cA = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) cA[i + 1] = cA[i] + (a[i] < inB ? 1 : 0);
  const bits = alignmentCells((n + 1) * w);
  // A first band from a guess of the optimal score; when the band's best path scores less than the
  // guess, that score is a true lower bound and the second band is exact (see fillBand).
  // The guess charges what usually costs: a few gap runs, residues of A that match nothing in B
  // (waters, ligands) and residues of B without a partner. It only decides the band's width.
  const top = 5 * Math.min(cA[n], m);
  const guess = top - 64 - (top >> 5) - (n - cA[n]) - Math.abs(m - cA[n]);
  let last = fillBand(a, bq, cA, bits, guess);
  if (last.best < guess) last = fillBand(a, bq, cA, bits, last.best);
  const { lastS, lastV, lastH } = last;
  let i = n;
  let j = m;
  let mat: 'S' | 'V' | 'H' = lastS >= lastV ? 'S' : lastV >= lastH ? 'V' : 'H';
  const aliA: string[] = [];
  const aliB: string[] = [];
  while (i > 0 && j > 0) {
    const cell = bits[i * w + j];
    if (mat === 'S') {
      if (cell & S_DIAG) {
        aliA.push(seqA[i - 1]);
        aliB.push(seqB[j - 1]);
        --i;
        --j;
      } else if (cell & S_IS_V) mat = 'V';
      else if (cell & S_IS_H) mat = 'H';
      else {
        --i;
        --j;
      }
    } else if (mat === 'V') {
      if (cell & V_EXT) {
        aliA.push(seqA[i - 1]);
        aliB.push('-');
        --i;
      } else if (cell & V_OPEN) {
        aliA.push(seqA[i - 1]);
        aliB.push('-');
        --i;
        mat = 'S';
      } else --i;
    } else {
      if (cell & H_EXT) {
        aliA.push('-');
        aliB.push(seqB[j - 1]);
        --j;
      } else if (cell & H_OPEN) {
        aliA.push('-');
        aliB.push(seqB[j - 1]);
        --j;
        mat = 'S';
      } else --j;
    }
  }
  while (i > 0) {
    aliA.push(seqA[i - 1]);
    aliB.push('-');
    --i;
  }
  while (j > 0) {
    aliA.push('-');
    aliB.push(seqB[j - 1]);
    --j;
  }
  aliA.reverse();
  aliB.reverse();
  return { aliA, aliB };
}

/** Scratch for alignSequences' traceback cells, kept between calls up to this size (each call zeroes what it uses). */
const KEPT_ALIGNMENT_CELLS = 16 * 1024 * 1024;
let alignmentScratch = new Uint8Array(0);

/**
 * `size` zeroed traceback cells. A fresh array per chain made every file with SEQRES allocate
 * and collect a matrix per chain; zeroing a kept one costs a fraction of that.
 */
function alignmentCells(size: number): Uint8Array {
  if (size > KEPT_ALIGNMENT_CELLS) return new Uint8Array(size);
  if (alignmentScratch.length < size) alignmentScratch = new Uint8Array(Math.min(KEPT_ALIGNMENT_CELLS, Math.max(size, alignmentScratch.length * 2, 65536)));
  const cells = alignmentScratch.subarray(0, size);
  cells.fill(0);
  return cells;
}

// Traceback bits per cell (i, j): which of the tests Mol*'s trace() makes hold there.
const S_DIAG = 1; // S[i][j] === S[i-1][j-1] + score
const S_IS_V = 2; // S[i][j] === V[i][j]
const S_IS_H = 4; // S[i][j] === H[i][j]
const V_EXT = 8; // V[i][j] === V[i-1][j] + EXT
const V_OPEN = 16; // V[i][j] === S[i-1][j] + GAP
const H_EXT = 32; // H[i][j] === H[i][j-1] + EXT
const H_OPEN = 64; // H[i][j] === S[i][j-1] + GAP
const GAP = -11;
const EXT = -1;
// Mol* sets some borders to -Infinity; NEG stands for it (and for cells outside the band): no
// reachable score comes near it, so every comparison and equality comes out the same.
const NEG = -(2 ** 29);

/**
 * The bound of fillBand at (i, j) without its −11 term: c = cA[i], r = cA[n] − c, rest = n − i.
 * Concave in j (a sum of concave pieces).
 */
function bandBound(j: number, c: number, r: number, m: number, rest: number): number {
  const after = m - j;
  return 5 * (c < j ? c : j) + 7 * (r < after ? r : after) - rest - after;
}

/**
 * The forward pass over the cells (i, j) that lie on some path from (0, 0) to (n, m) scoring at
 * least `floor`, cells outside counting as -Infinity; returns the scores at (n, m) and the best
 * score found. Why this is Mol*'s result when `floor` is at most the optimal score: a path's score
 * is its matches (+5), mismatches (-3) and gap runs (-11, then -1 per further step; Mol*'s border
 * makes a leading gap cost -11 whatever its length). So a path through (i, j) scores at most
 *   5·min(cA[i], j) − 11·[i ≠ j]  +  7·min(cA[n] − cA[i], m − j) − (n − i) − (m − j)
 * Before the cell: at most 5 per match, and at least one gap run when i ≠ j. After it, with x
 * matches, y mismatches and g gap steps (each at most −1; a match or mismatch takes a residue of
 * each side, a gap step one of one side): (n − i) + (m − j) = 2x + 2y + g, so the score is at most
 * 5x − 3y − g = 7x − y − (n − i) − (m − j), with x at most the residues of A left that occur in B
 * (cA) and at most m − j. Every optimal path stays where that bound is at least
 * `floor`, so every cell on one, and every cell whose value equals an optimal path's there, has
 * its true value; cells off every optimal path only get lower values, which makes none of the
 * traceback's equalities hold that did not hold before. The traceback therefore follows the same
 * cells and takes the same turns. When `floor` is above the optimum, the band may miss optimal
 * paths, but its best is the score of a real path, hence a floor for a second, exact pass.
 */
function fillBand(
  a: Int32Array,
  bq: Int32Array,
  cA: Int32Array,
  bits: Uint8Array,
  floor: number,
): { best: number; lastS: number; lastV: number; lastH: number } {
  const n = a.length;
  const m = bq.length;
  const w = m + 1;
  let sPrev = new Int32Array(w);
  let vPrev = new Int32Array(w);
  let sRow = new Int32Array(w).fill(NEG);
  let vRow = new Int32Array(w).fill(NEG);
  // Row 0: S[0][j] = GAP (S[0][0] = 0), V[0][j] = -Infinity (H[0][j] is never read).
  sPrev.fill(GAP);
  vPrev.fill(NEG);
  sPrev[0] = 0;
  let lastS = sPrev[m];
  let lastV = vPrev[m];
  let lastH = m === 0 ? NEG : 0;
  // What sRow/vRow hold from two rows back, to be reset: row 0 fills them all.
  let oldLo = 0;
  let oldHi = m;
  let prevLo = 0;
  let prevHi = m;
  const total = cA[n];
  for (let i = 1; i <= n; i++) {
    // The band of row i: the j where the bound is at least floor. Without the −11 term the bound is
    // concave in j, so its cells form an interval around its maximum, which lies at a breakpoint.
    const c = cA[i];
    const r = total - c;
    const rest = n - i;
    // The peak lies at a breakpoint (c, m - r) or an end; the bound rises to it and falls after it.
    let peak = 1;
    let peakValue = bandBound(1, c, r, m, rest);
    const k1 = c < 1 ? 1 : c > m ? m : c;
    const k2 = m - r < 1 ? 1 : m - r;
    for (let q = 0; q < 3; q++) {
      const k = q === 0 ? m : q === 1 ? k1 : k2;
      const v = bandBound(k, c, r, m, rest);
      if (v > peakValue) {
        peak = k;
        peakValue = v;
      }
    }
    let lo = m + 1;
    let hi = 0;
    if (m > 0 && peakValue - 11 >= floor) {
      // The first j in [1, peak] and the last in [peak, m] where the bound reaches floor.
      let below = 0;
      let at = peak;
      while (at - below > 1) {
        const mid = (below + at) >> 1;
        if (bandBound(mid, c, r, m, rest) - 11 >= floor) at = mid;
        else below = mid;
      }
      lo = at;
      at = peak;
      let above = m + 1;
      while (above - at > 1) {
        const mid = (at + above) >> 1;
        if (bandBound(mid, c, r, m, rest) - 11 >= floor) at = mid;
        else above = mid;
      }
      hi = at;
    }
    if (i <= m && bandBound(i, c, r, m, rest) >= floor) {
      if (i < lo) lo = i;
      if (i > hi) hi = i;
    }
    // Row i - 2's cells become -Infinity again, then column 0: S[i][0] = GAP, V[i][0] = 0.
    if (oldLo <= oldHi) {
      sRow.fill(NEG, oldLo, oldHi + 1);
      vRow.fill(NEG, oldLo, oldHi + 1);
    }
    sRow[0] = GAP;
    vRow[0] = 0;
    if (lo <= hi) {
      const ai = a[i - 1];
      let row = i * w + lo - 1;
      let sLeft = sRow[lo - 1]; // S[i][j-1]: GAP at column 0, else outside the band
      let hLeft = NEG; // H[i][j-1]: -Infinity at column 0 and outside the band
      let sDiag = sPrev[lo - 1]; // S[i-1][j-1]
      for (let j = lo; j <= hi; j++) {
        const sUp = sPrev[j];
        const v1 = sUp + GAP;
        const v2 = vPrev[j] + EXT;
        const v = v1 > v2 ? v1 : v2;
        const h1 = sLeft + GAP;
        const h2 = hLeft + EXT;
        const h = h1 > h2 ? h1 : h2;
        const d = sDiag + (ai === bq[j - 1] ? 5 : -3);
        const sc = d > v ? (d > h ? d : h) : v > h ? v : h;
        vRow[j] = v;
        sRow[j] = sc;
        bits[++row] =
          (sc === d ? S_DIAG : 0) |
          (sc === v ? S_IS_V : 0) |
          (sc === h ? S_IS_H : 0) |
          (v === v2 ? V_EXT : 0) |
          (v === v1 ? V_OPEN : 0) |
          (h === h2 ? H_EXT : 0) |
          (h === h1 ? H_OPEN : 0);
        sDiag = sUp;
        sLeft = sc;
        hLeft = h;
      }
      lastH = hi === m ? hLeft : NEG;
    } else lastH = NEG;
    lastS = sRow[m];
    lastV = vRow[m];
    oldLo = prevLo;
    oldHi = prevHi;
    prevLo = lo;
    prevHi = hi;
    const s = sPrev;
    sPrev = sRow;
    sRow = s;
    const v = vPrev;
    vPrev = vRow;
    vRow = v;
  }
  const best = Math.max(lastS, lastV, lastH);
  return { best, lastS, lastV, lastH };
}
