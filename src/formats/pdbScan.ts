/**
 * The pass over a PDB file's lines that the byte-level reader (pdbFast.ts) starts with: every atom
 * record cut by its fixed columns into the arrays the later phases read, and the other records
 * the reader needs (MODEL/ENDMDL/END, TER, HETNAM, SEQRES, COMPND, HEADER, REMARK 350). Kept apart
 * from the reader and free of Mol* imports, so a thread that scans part of a large file loads
 * nothing else (element symbols are kept as written; the reader gives them Mol*'s spelling).
 */

export const SP = 32;
export const TAB = 9;

/** Mol*'s Tokenizer.trim over bytes: [start, end) without leading/trailing spaces and tabs. */
export function trimStart(b: Uint8Array, s: number, e: number): number {
  let c = b[s];
  const last = e - 1;
  while ((c === TAB || c === SP) && s <= last) c = b[++s];
  return s;
}
export function trimEnd(b: Uint8Array, s: number, e: number): number {
  let last = e - 1;
  let c = b[last];
  while ((c === TAB || c === SP) && last >= s) c = b[--last];
  return last + 1;
}

/** Mol*'s number-parser parseInt over bytes (stops at the first non-digit). */
export function parseIntBytes(b: Uint8Array, start: number, end: number): number {
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
export function fieldFloat(b: Uint8Array, s: number, e: number): number {
  const ts = trimStart(b, s, e);
  const te = trimEnd(b, ts, e);
  return parseFloatBytes(b, ts, te) || 0;
}

/**
 * A short token (up to 4 bytes) as a number: equal codes ⇔ equal tokens. The bytes are packed
 * into a 32-bit integer (pure integer arithmetic, no overflow for the optimiser to guard) and the
 * length kept above them. Longer tokens never occur for the fields coded (they are cut from at most
 * 4 columns); they get codes of their own, above every short one.
 */
export function code(b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  if (len > 4) return longCode(b, s, e);
  let v = 0;
  for (let i = s; i < e; i++) v = (v << 8) | b[i];
  return v + len * 2 ** 32;
}

/** code() of a longer token: its length and bytes in a double (exact up to 6 bytes), above 2^42. */
function longCode(b: Uint8Array, s: number, e: number): number {
  let v = e - s;
  for (let i = s; i < e; i++) v = v * 256 + b[i];
  return v + (e - s) * 2 ** 40;
}

/** code() of a string's (latin1) characters. */
export function stringCode(text: string): number {
  if (text.length > 4) return longCode(Buffer.from(text, 'latin1'), 0, text.length);
  let v = 0;
  for (let i = 0; i < text.length; i++) v = (v << 8) | text.charCodeAt(i);
  return v + text.length * 2 ** 32;
}

export const latin1 = (b: Uint8Array, s: number, e: number): string => {
  // Buffer's latin1 decoder applied to the array itself: a Buffer view made per line cost more than
  // decoding the line. Clamped as Buffer.toString clamps (the decoder throws out of range).
  if (e - s > 16) return decodeLatin1.call(b, s, Math.min(e, b.length));
  let out = '';
  for (let i = s; i < e; i++) out += String.fromCharCode(b[i]);
  return out;
};
const decodeLatin1 = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

/** What CifField.str gives for a token: '' for '.' and '?'. */
export const tokenStr = (t: string): string => (t === '.' || t === '?' ? '' : t);

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
export const RESCAN_WITHOUT_END_FRAMES = 'rescan without END frames';

/** A part scanned on its own met what only a scan of everything before it can read (see ScanState.independent). */
export const CHUNK_DEPENDS = 'the part depends on what comes before it';

/** JavaScript's \s over latin1. */
const isSpace = (c: number): boolean => c === SP || (c >= 9 && c <= 13) || c === 0xa0;

export class Growable {
  array: Int32Array;
  length = 0;
  /** `kept`: an earlier scan's array, taken when it holds `capacity` entries (the caller has done with it). */
  constructor(capacity = 1024, kept?: Int32Array) {
    this.array = kept && kept.length >= capacity ? kept : new Int32Array(capacity);
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

/**
 * The decline that means: the reference rewrites this file's MODEL/ENDMDL/END records first
 * (framesSeparatedByEnd, normalisePdbModels in parse.ts). The caller can apply the same rewrite and
 * read the result with `modelsNormalised`.
 */
export const MODEL_REWRITE = 'the reference rewrites MODEL records';

export class Growable8 {
  array: Uint8Array;
  length = 0;
  constructor(capacity: number, kept?: Uint8Array) {
    this.array = kept && kept.length >= capacity ? kept : new Uint8Array(capacity);
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
  // The usual field (coordinateInto's first case) passes.
  if (
    b[start + 4] === 46 &&
    FIELD_SIGN[(BYTE_CLASS[b[start]] << 6) | (BYTE_CLASS[b[start + 1]] << 4) | (BYTE_CLASS[b[start + 2]] << 2) | BYTE_CLASS[b[start + 3]]] !== 0
  ) {
    const f1 = b[start + 5] - 48;
    const f2 = b[start + 6] - 48;
    const f3 = b[start + 7] - 48;
    if (f1 >= 0 && f1 <= 9 && f2 >= 0 && f2 <= 9 && f3 >= 0 && f3 <= 9) return true;
  }
  let digits = 0;
  for (let i = start; i < start + 8; i++) {
    const c = b[i];
    if (c >= 48 && c <= 57) digits++;
    else if (c !== SP && c !== 46 && c !== 45 && c !== 43 && c !== 101 && c !== 69) return false;
  }
  return digits > 0;
}

/** Per byte: 0 blank, 1 minus, 2 digit, 3 anything else. */
const BYTE_CLASS = new Uint8Array(256).fill(3);
BYTE_CLASS[SP] = 0;
BYTE_CLASS[45] = 1;
for (let d = 0; d < 10; d++) BYTE_CLASS[48 + d] = 2;
/** A digit's value; 0 for a blank or a minus, which add nothing to the number. */
const DIGIT = new Uint8Array(256);
for (let d = 0; d < 10; d++) DIGIT[48 + d] = d;
/**
 * By the classes of the four columns before a coordinate's point: the sign of a number written
 * there as blanks, an optional minus and at least one digit (1 or -1), or 0 for anything else.
 */
const FIELD_SIGN = new Int8Array(256);
for (let pattern = 0; pattern < 256; pattern++) {
  const classes = [(pattern >> 6) & 3, (pattern >> 4) & 3, (pattern >> 2) & 3, pattern & 3];
  let k = 0;
  while (k < 4 && classes[k] === 0) k++;
  const minus = k < 4 && classes[k] === 1;
  if (minus) k++;
  const digits = k;
  while (k < 4 && classes[k] === 2) k++;
  if (k === 4 && k > digits) FIELD_SIGN[pattern] = minus ? -1 : 1;
}
/** k / 1000 for k < 1000, as Mol*'s parser divides (point / div). */
const THOUSANDTHS = new Float64Array(1000);
for (let k = 0; k < 1000; k++) THOUSANDTHS[k] = k / 1000.0;

/**
 * fieldFloat over the 8 columns at `start`, stored straight into `into[at]` (as Mol*'s Float32Array
 * does): returning the double would box it, three times per atom. Returns false, storing nothing,
 * when the field fails the coordinate check (coordinateBytesOk): the scan reads every byte of the
 * field anyway, so the check costs nothing more here than a second pass over the file would.
 * The usual field (blanks, an optional minus, digits, a point, digits) is read in one pass with
 * Mol*'s arithmetic; anything else goes through the check and the general parser.
 */
export function coordinateInto(b: Uint8Array, start: number, into: Float32Array, at: number): boolean {
  // As PDB writers write it (%8.3f): the point in the fifth column, three digits after it, and
  // before it blanks, an optional minus and at least one digit (FIELD_SIGN of the four columns'
  // classes). Mol*'s arithmetic on those digits.
  if (b[start + 4] === 46) {
    const c0 = b[start];
    const c1 = b[start + 1];
    const c2 = b[start + 2];
    const c3 = b[start + 3];
    const sign = FIELD_SIGN[(BYTE_CLASS[c0] << 6) | (BYTE_CLASS[c1] << 4) | (BYTE_CLASS[c2] << 2) | BYTE_CLASS[c3]];
    const f1 = b[start + 5] - 48;
    const f2 = b[start + 6] - 48;
    const f3 = b[start + 7] - 48;
    if (sign !== 0 && f1 >= 0 && f1 <= 9 && f2 >= 0 && f2 <= 9 && f3 >= 0 && f3 <= 9) {
      const whole = DIGIT[c0] * 1000 + DIGIT[c1] * 100 + DIGIT[c2] * 10 + DIGIT[c3];
      into[at] = sign * (whole + THOUSANDTHS[f1 * 100 + f2 * 10 + f3]) || 0;
      return true;
    }
  }
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

export class GrowableF64 {
  array: Float64Array;
  length = 0;
  constructor(capacity: number, kept?: Float64Array) {
    this.array = kept && kept.length >= capacity ? kept : new Float64Array(capacity);
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
export interface ScanState {
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
  /** A HEADER record was read (the last one gives idCode and depDate, blank or not). */
  sawHeader: boolean;
  /**
   * What the summary's header fields are read from in the file's first HEADER_BYTES bytes, so that
   * parse.ts need not pass over those bytes again: the HEADER, TITLE and EXPDTA lines (cut at
   * HEADER_BYTES), and the resolution as parse.ts's pattern over those bytes would capture it
   * (resolutionAt), undefined when it captures none.
   */
  headLines: string[];
  headResolution: string | undefined;
  /** resolutionAt ran into the end of the scanned array before HEADER_BYTES: a window's end, unless the file ends there. */
  headCut: boolean;
  /** Lines scanned so far (the scan of a later part of the file goes on counting from here). */
  lines: number;
  /**
   * The file offset of the scanned array's first byte: 0 when the array is the whole file; for a
   * file scanned through a window (readPdbAtomsFromFile), where the window's bytes sit in the file.
   * atomLines hold file offsets; prevLine, a place in the array.
   */
  base: number;
  /** The code (smallCode) of each of compNames, and of each of symbols (its symbolIndex key): how two scans' lists are joined. */
  compKeys: number[];
  symbolCodes: number[];
  /**
   * A part of the file scanned on its own (scanChunk): it presumes it starts inside the first
   * model, just after an atom record of another residue, and gives up (CHUNK_DEPENDS) where that
   * would not be enough: a MODEL record, or an atom record after ENDMDL or END (`closed`).
   */
  independent: boolean;
  closed: boolean;
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

/** The per-atom arrays of a scan, as newScanState may take them over from an earlier scan. */
export interface AtomArrays {
  atomLines: Int32Array;
  atomLength: Uint8Array;
  xs: Float32Array;
  ys: Float32Array;
  zs: Float32Array;
  elements: Uint8Array;
  keys: Float64Array;
  /** The per-run arrays (ScanState's Growables), taken over the same way. */
  runs?: RunArrays;
}

export interface RunArrays {
  start: Int32Array;
  ter: Uint8Array;
  model: Int32Array;
  comp: Int32Array;
  asym: Uint8Array;
  ins: Uint8Array;
  seqInt: Int32Array;
  seqTok: Float64Array;
}

/** The arrays a scan left (grown or not), for newScanState to take over in a later scan. */
export function scanArrays(st: ScanState): AtomArrays {
  const { atomLines, atomLength, xs, ys, zs, elements, keys } = st;
  const runs = {
    start: st.runStart.array,
    ter: st.runTer.array,
    model: st.runModel.array,
    comp: st.runComp.array,
    asym: st.runAsym.array,
    ins: st.runIns.array,
    seqInt: st.runSeqInt.array,
    seqTok: st.runSeqTok.array,
  };
  return { atomLines, atomLength, xs, ys, zs, elements, keys, runs };
}

/**
 * `reuse`: an earlier scan's per-atom arrays, taken instead of new ones when they hold at least as
 * many atoms as a new scan's would: every entry below `atoms` is written before it is read, and
 * fresh memory costs zeroing it and collecting it again, a few percent of a small file's read.
 */
export function newScanState(n: number, reuse?: AtomArrays): ScanState {
  // Sized from the file (at most a line per 64 bytes: atom records are 80 columns, often fewer when
  // they end before the charge or the element; runs for a quarter of the lines) and grown when that
  // is short: a guess of 81 bytes a line made files of 78-column records copy every array once.
  // No floor of a thousand entries: every file read allocates these arrays, and for a small file
  // that floor made allocating them a large part of its parse.
  const guess = Math.max(16, Math.ceil(n / 64));
  const runs = Math.max(16, guess >> 2);
  const kept = reuse && reuse.atomLines.length >= guess ? reuse : undefined;
  // Each run array too, when it is long enough (every entry below a run count is pushed before it is read).
  const r = reuse?.runs;
  return {
    runComp: new Growable(runs, r?.comp),
    runAsym: new Growable8(runs, r?.asym),
    runIns: new Growable8(runs, r?.ins),
    runSeqInt: new Growable(runs, r?.seqInt),
    runSeqTok: new GrowableF64(runs, r?.seqTok),
    compNames: [],
    compIndex: new Map(),
    unnumberedModels: [],
    bareModelLine: false,
    endFrames: false,
    frameOpen: false,
    frames: 0,
    endmdlLine: false,
    atomLines: kept ? kept.atomLines : new Int32Array(guess),
    atomLength: kept ? kept.atomLength : new Uint8Array(guess),
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
    sawHeader: false,
    headLines: [],
    headResolution: undefined,
    headCut: false,
    lines: 0,
    base: 0,
    compKeys: [],
    symbolCodes: [],
    independent: false,
    closed: false,
    runStart: new Growable(runs, r?.start),
    runTer: new Growable8(runs, r?.ter),
    runModel: new Growable(runs, r?.model),
    terPending: false,
    prevLine: -1,
    prevModel: -1,
    firstModel: 0,
    xs: kept ? kept.xs : new Float32Array(guess),
    ys: kept ? kept.ys : new Float32Array(guess),
    zs: kept ? kept.zs : new Float32Array(guess),
    elements: kept ? kept.elements : new Uint8Array(guess),
    keys: kept ? kept.keys : new Float64Array(guess),
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
export function scanLines(b: Uint8Array, minLineLength: number, modelsNormalised: boolean, st: ScanState, from = 0, to = b.length): string {
  for (const k of symbolColumnsUsed) symbolByColumns[k] = 0;
  symbolColumnsUsed.length = 0;
  // Buffer's indexOf finds a byte natively; a Uint8Array's goes through a slower generic path.
  const buffer = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const n = to;
  let pos = from;
  let lineNo = st.lines - 1;
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
  const base = st.base;
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
      if (st.closed) return scanEnd(st, atoms, firstAtoms, CHUNK_DEPENDS);
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
      const newRun =
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
        b[p + 20] !== b[s + 20];
      if (newRun) {
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
          st.compKeys.push(compKey);
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
            st.symbols.push(tokenStr(latin1(b, ts, te)));
            st.symbolIndex.set(symbolCode, known);
            st.symbolCodes.push(symbolCode);
          }
          symbol = known;
          // Columns that trim to a symbol give that symbol every time (blank ones are guessed per name).
          if (columns >= 0 && ts >= s + 76) {
            symbolByColumns[columns] = symbol + 1;
            symbolColumnsUsed.push(columns);
          }
        }
        elements[at] = symbol;
        // A residue for getAtomSite ends where the chain, residue number (as an integer) or insertion code changes
        // (columns a run starts at when they change: within a run, none does).
        if (
          newRun &&
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
          nameKey[0] = t;
          seen = seenInMap(st);
        }
        const alt = b[s + 16];
        const altCode = alt === SP || alt === 46 || alt === 63 ? 0 : alt + 1;
        if (altCode) st.anyAltloc = true;
        let nameCode = t;
        if (seen) {
          nameKey[0] = t;
          repeatedName(st, i, b, nts, nte, alt, altCode);
          nameCode = nameKey[0];
        }
        keys[at] = nameCode * 512 + altCode;
        firstAtoms = at + 1;
      } else if (!coordinateBytesOk(b, s + 30) || !coordinateBytesOk(b, s + 38) || !coordinateBytesOk(b, s + 46))
        return scanEnd(st, atoms, firstAtoms, COORDINATES_NOT_NUMBERS);
      atomLines[i] = base + s;
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
  st.lines = lineNo + 1;
  return scanEnd(st, atoms, firstAtoms, '');
}

/**
 * The name code (code()) an atom's name gives, passed between scanLines and the two functions
 * below through this array: used as a Map key or returned from a call, the number would be boxed,
 * and where the optimiser boxes it once for every atom rather than in these rare cases, a heap
 * number per atom is garbage.
 */
const nameKey = new Float64Array(1);

/** Whether the residue's name map (64 names or more) has nameKey[0]; adds it when not. */
function seenInMap(st: ScanState): boolean {
  const t = nameKey[0];
  if (st.nameCounts.has(t)) return true;
  st.nameCounts.set(t, 0);
  return false;
}

/**
 * Atom `i` repeats the name nameKey[0] of an earlier atom of its residue: it is named with a
 * suffix (as Mol*'s getAtomSite names it), whose code goes back into nameKey[0] (-1 when too long
 * for one: atomKeyStrings holds it then).
 */
function repeatedName(st: ScanState, i: number, b: Uint8Array, nts: number, nte: number, alt: number, altCode: number): void {
  const t = nameKey[0];
  const next = (st.nameCounts.get(t) ?? 0) + 1;
  st.nameCounts.set(t, next);
  st.nameSuffix.set(i, next);
  const label = `${tokenStr(latin1(b, nts, nte))}_${next}`;
  if (label.length > 4) {
    st.atomKeyStrings.set(i, `${label}\u0000${altCode ? String.fromCharCode(alt) : ''}`);
    nameKey[0] = -1;
  } else nameKey[0] = stringCode(label);
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
  if (st.base + s < HEADER_BYTES && (c0 === 72 || c0 === 84 || c0 === 69 || c0 === 82)) headerLine(b, s, nl, st);
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
      st.sawHeader = true;
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
      if (st.independent) return CHUNK_DEPENDS;
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
      st.closed = st.independent;
    } else if (startsWith(b, s, e, 'END')) {
      let blank = true;
      for (let k = s + 3; k < nl; k++) if (!isSpace(b[k])) blank = false;
      if (blank) {
        st.sawEndLine = true;
        st.frameOpen = false;
        st.closed = st.independent;
      }
    }
  } else if (c0 === 84) {
    if (startsWith(b, s, e, 'TER')) st.terPending = true;
  } else if (c0 === 82) {
    if (!st.hasAssemblies && startsWith(b, s, e, 'REMARK 350')) st.hasAssemblies = true;
  }
  return '';
}

/** How much of the file's start the summary's header fields are read from (parse.ts). */
export const HEADER_BYTES = 200_000;

/**
 * Keeps the line at `s` for the header fields (ScanState.headLines) when it starts with HEADER,
 * "TITLE " or EXPDTA within the first HEADER_BYTES bytes (a line running past them cut there, its
 * carriage return kept), and reads the resolution from the first "REMARK   2 RESOLUTION." line
 * where resolutionAt finds one.
 */
function headerLine(b: Uint8Array, s: number, nl: number, st: ScanState): void {
  const head = HEADER_BYTES - st.base;
  const end = nl < head ? nl : head;
  if (startsWith(b, s, end, 'HEADER') || startsWith(b, s, end, 'TITLE ') || startsWith(b, s, end, 'EXPDTA')) st.headLines.push(latin1(b, s, end));
  else if (st.headResolution === undefined && startsWith(b, s, end, 'REMARK   2 RESOLUTION.')) {
    st.headResolution = resolutionAt(b, s, st.base);
    if (resolutionCut) st.headCut = true;
  }
}

/**
 * The number parse.ts's resolution pattern, /^REMARK {3}2 RESOLUTION\.\s+([0-9.]+)\s+ANGSTROM/m over the
 * file's first HEADER_BYTES bytes, captures when its match starts at `s` (a line starting with
 * "REMARK   2 RESOLUTION."), or undefined. Its parts match disjoint sets of bytes (\s over latin1 is
 * isSpace), so the greedy match is the only one: no backtracking to mimic. It may run on over line ends.
 */
export function resolutionAt(b: Uint8Array, s: number, base = 0): string | undefined {
  const head = HEADER_BYTES - base;
  const limit = b.length < head ? b.length : head;
  resolutionCut = false;
  const answer = resolutionUpTo(b, s, limit);
  if (resolutionCut && limit === head) resolutionCut = false;
  return answer;
}

/** Whether the last resolutionAt read up to the end of its array before HEADER_BYTES (its answer may change with more bytes). */
let resolutionCut = false;

function resolutionUpTo(b: Uint8Array, s: number, limit: number): string | undefined {
  // Each part that reaches `limit` fails the match there (as it would on the whole file at HEADER_BYTES).
  let i = s + 22;
  const blank = i;
  while (i < limit && isSpace(b[i])) i++;
  if (i >= limit) return cut();
  if (i === blank) return undefined;
  const from = i;
  while (i < limit && ((b[i] >= 48 && b[i] <= 57) || b[i] === 46)) i++;
  if (i >= limit) return cut();
  const to = i;
  if (to === from) return undefined;
  while (i < limit && isSpace(b[i])) i++;
  if (i + 8 > limit) return cut();
  if (i === to || !startsWith(b, i, limit, 'ANGSTROM')) return undefined;
  return latin1(b, from, to);
}

function cut(): undefined {
  resolutionCut = true;
  return undefined;
}

// guessElement's result (two numbers; a tuple per atom would be garbage to collect).
let guessStart = 0;
let guessEnd = 0;

/** One-character strings, made once. */
export const CHARS = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c));

/** The insertion code token as Mol*'s token column holds it: empty for a blank column (for comparing tokens). */
export const tokenIns = (c: number): number => (c === SP ? -1 : c);

export function insStr(b: Uint8Array, s: number): string {
  const c = b[s + 26];
  return c === SP || c === 46 || c === 63 ? '' : CHARS[c];
}

/** The chain id as Mol* reads it: column 22 alone ('' for '.' and '?'). */
export function chainStr(b: Uint8Array, s: number): string {
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
export function seqNumber(b: Uint8Array, s: number): number {
  const ts = trimStart(b, s + 22, s + 26);
  return parseIntBytes(b, ts, trimEnd(b, ts, s + 26)) || 0;
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
 * Whether the atom record at `s` starts a new residue for getAtomSite after the one at `p` (the
 * chain, the residue number as an integer or the insertion code changes): where the scan starts
 * its list of the residue's atom names afresh.
 */
export function startsResidue(b: Uint8Array, p: number, s: number): boolean {
  return (
    (b[p + 21] !== b[s + 21] && chainStr(b, p) !== chainStr(b, s)) ||
    (b[p + 26] !== b[s + 26] && insStr(b, p) !== insStr(b, s)) ||
    ((b[p + 22] !== b[s + 22] || b[p + 23] !== b[s + 23] || b[p + 24] !== b[s + 24] || b[p + 25] !== b[s + 25]) && seqNumber(b, p) !== seqNumber(b, s))
  );
}

/** An ATOM or HETATM record of at least `minLineLength` columns at [s, e). */
function isAtomLine(b: Uint8Array, s: number, e: number, minLineLength: number): boolean {
  return e - s >= minLineLength && (startsWith(b, s, e, 'ATOM  ') || startsWith(b, s, e, 'HETATM'));
}

/**
 * The first place among the lines starting in [s, limit) of `b` (s a line start) where a part of
 * the file may start: an atom record following an atom record of another residue. Undefined when
 * there is none there; 'incomplete' when `arriving` (more bytes are to come) and a line there has
 * no newline in `b` yet. Otherwise a line without one ends with `b`.
 */
export function cutInWindow(b: Buffer, s: number, limit: number, arriving: false, minLineLength?: number): ChunkStart | undefined;
export function cutInWindow(b: Buffer, s: number, limit: number, arriving: boolean, minLineLength?: number): ChunkStart | 'incomplete' | undefined;
export function cutInWindow(b: Buffer, s: number, limit: number, arriving: boolean, minLineLength = 54): ChunkStart | 'incomplete' | undefined {
  let prev = -1;
  while (s < limit) {
    let nl = b.indexOf(10, s);
    if (nl < 0) {
      if (arriving) return 'incomplete';
      nl = b.length;
    }
    const e = nl > s && b[nl - 1] === 13 ? nl - 1 : nl;
    const atom = isAtomLine(b, s, e, minLineLength);
    if (atom && prev >= 0 && startsResidue(b, prev, s)) return { from: s, prevLine: prev };
    prev = atom ? s : -1;
    s = nl + 1;
  }
  return undefined;
}

/** Where a part of the file starts (an atom record) and the atom record just before it. */
export interface ChunkStart {
  from: number;
  prevLine: number;
}

/**
 * Cuts for scanning a file in about `parts` parts of at least `minBytes`: each part starts at an
 * atom record that directly follows an atom record of another residue (so its scan can start its
 * residue's name list empty, and compare its first run with that line). A cut that finds no such
 * pair within a window after its target is dropped; so is a part that would be too small.
 */
export function chunkStarts(bytes: Uint8Array, parts: number, minBytes: number, minLineLength = 54): ChunkStart[] {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buffer.length;
  const starts: ChunkStart[] = [];
  const window = Math.max(minBytes, 1 << 20);
  let last = 0;
  for (let k = 1; k < parts; k++) {
    const target = Math.max(Math.floor((n * k) / parts), last + minBytes);
    if (target >= n - minBytes) break;
    const nl = buffer.indexOf(10, target);
    if (nl < 0) break;
    const cut = cutInWindow(buffer, nl + 1, Math.min(n, nl + 1 + window), false, minLineLength);
    if (cut && n - cut.from >= minBytes) starts.push(cut);
    if (starts.length > 0) last = starts[starts.length - 1].from;
  }
  return starts;
}

/** The scan of [from, to) on its own, as joinChunk takes it: `why` is '' or why the scan stopped. */
export interface ChunkScan {
  from: number;
  to: number;
  prevLine: number;
  why: string;
  st: ScanState;
}

/**
 * Scans [from, to) of a file on its own, in whatever thread: as the scan of the whole file would
 * if the state before `from` were the one this presumes (ScanState.independent), which joinChunk
 * checks before it uses the result.
 */
export function scanChunk(b: Uint8Array, from: number, to: number, prevLine: number, minLineLength = 54): ChunkScan {
  const st = newScanState(to - from);
  st.independent = true;
  st.modelNum = 1;
  st.firstModel = 1;
  st.prevModel = 1;
  st.prevLine = prevLine;
  const why = scanLines(b, minLineLength, false, st, from, to);
  return { from, to, prevLine, why, st };
}

/** The typed arrays of a chunk's scan, to hand to another thread without copying them. */
export function chunkBuffers(chunk: ChunkScan): ArrayBuffer[] {
  const st = chunk.st;
  return [
    st.atomLines,
    st.atomLength,
    st.xs,
    st.ys,
    st.zs,
    st.elements,
    st.keys,
    st.names,
    st.runComp.array,
    st.runAsym.array,
    st.runIns.array,
    st.runSeqInt.array,
    st.runSeqTok.array,
    st.runStart.array,
    st.runTer.array,
    st.runModel.array,
  ].map((a) => a.buffer as ArrayBuffer);
}

/**
 * Joins the scan of a part (scanChunk) to `st`, the scan of everything before it, when the part's
 * presumptions hold there: `st` ended on the atom record the part followed, inside the first model
 * with every atom so far in it and no TER pending; the part's first atom starts another residue. `st` then is what scanning the part after it would
 * have made it. False, leaving `st` as it was: the caller scans the part itself.
 */
export function joinChunk(b: Uint8Array, st: ScanState, chunk: ChunkScan): boolean {
  const c = chunk.st;
  // A part that ends in ENDMDL or END is the file's last (atoms after them stop its scan).
  if (chunk.why !== '' || c.atoms === 0 || (c.closed && chunk.to !== b.length)) return false;
  if (st.terPending || st.prevLine !== chunk.prevLine || st.modelNum < 1 || st.modelNum !== st.firstModel || st.firstAtoms !== st.atoms) return false;
  if (st.endFrames && !st.frameOpen) return false;
  if (c.atomLines[0] !== chunk.from || !startsResidue(b, chunk.prevLine, chunk.from)) return false;
  // Element symbols and components by their codes, numbered on from st's as a scan would.
  const symbolMap = new Uint8Array(c.symbols.length);
  let symbolCount = st.symbols.length;
  for (let k = 0; k < c.symbols.length; k++) {
    const known = st.symbolIndex.get(c.symbolCodes[k]);
    if (known === undefined) {
      if (symbolCount > 255) return false;
      symbolMap[k] = symbolCount++;
    } else symbolMap[k] = known;
  }
  for (let k = 0; k < c.symbols.length; k++) {
    if (symbolMap[k] >= st.symbols.length) {
      st.symbols.push(c.symbols[k]);
      st.symbolIndex.set(c.symbolCodes[k], symbolMap[k]);
      st.symbolCodes.push(c.symbolCodes[k]);
    }
  }
  const compMap = new Int32Array(c.compNames.length);
  for (let k = 0; k < c.compNames.length; k++) {
    let comp = st.compIndex.get(c.compKeys[k]);
    if (comp === undefined) {
      comp = st.compNames.length;
      st.compNames.push(c.compNames[k]);
      st.compIndex.set(c.compKeys[k], comp);
      st.compKeys.push(c.compKeys[k]);
    }
    compMap[k] = comp;
  }
  const base = st.atoms;
  const count = c.atoms;
  while (st.atomLines.length < base + count) growAtoms(st);
  st.atomLines.set(c.atomLines.subarray(0, count), base);
  st.atomLength.set(c.atomLength.subarray(0, count), base);
  st.xs.set(c.xs.subarray(0, count), base);
  st.ys.set(c.ys.subarray(0, count), base);
  st.zs.set(c.zs.subarray(0, count), base);
  st.keys.set(c.keys.subarray(0, count), base);
  for (let i = 0; i < count; i++) st.elements[base + i] = symbolMap[c.elements[i]];
  for (const [i, v] of c.nameSuffix) st.nameSuffix.set(base + i, v);
  for (const [i, v] of c.atomKeyStrings) st.atomKeyStrings.set(base + i, v);
  st.atoms = base + count;
  st.firstAtoms = base + count;
  for (let r = 0; r < c.runStart.length; r++) {
    st.runStart.push(base + c.runStart.array[r]);
    st.runTer.push(c.runTer.array[r]);
    st.runModel.push(st.modelNum);
    st.runComp.push(compMap[c.runComp.array[r]]);
    st.runAsym.push(c.runAsym.array[r]);
    st.runIns.push(c.runIns.array[r]);
    st.runSeqInt.push(c.runSeqInt.array[r]);
    st.runSeqTok.push(c.runSeqTok.array[r]);
  }
  st.hetnamBlocks.push(...c.hetnamBlocks);
  st.compndBlocks.push(...c.compndBlocks);
  // Only the file's first SEQRES block counts.
  if (!st.seqresLines && c.seqresLines) st.seqresLines = c.seqresLines;
  st.seqresOpen = c.seqresOpen;
  st.compndOpen = c.compndOpen;
  st.hetnamOpen = c.hetnamOpen;
  if (c.sawHeader) {
    st.sawHeader = true;
    st.idCode = c.idCode;
    st.depDate = c.depDate;
  }
  st.hasAssemblies ||= c.hasAssemblies;
  st.wide ||= c.wide;
  st.anyInsCode ||= c.anyInsCode;
  st.anyAltloc ||= c.anyAltloc;
  st.occupancyBlank &&= c.occupancyBlank;
  st.terPending = c.terPending;
  st.prevLine = c.prevLine;
  if (c.endmdlLine) {
    st.endmdlLine = true;
    st.normInModel = false;
  }
  if (c.sawEndLine) {
    st.sawEndLine = true;
    st.frameOpen = false;
  }
  st.lines += c.lines;
  st.names.set(c.names);
  st.nameCount = c.nameCount;
  st.nameCounts = c.nameCounts;
  return true;
}

/**
 * A few records of every kind the scan meets in ordinary files, atom records first among them.
 * scanLines runs over them before its first real file (primeScan).
 */
const PRIMER_LINES = [
  'HEADER    PRIMER                                  01-JAN-00   0XXX              ',
  'TITLE     PRIMER                                                                ',
  'EXPDTA    X-RAY DIFFRACTION                                                     ',
  'REMARK   2 RESOLUTION.    2.00 ANGSTROMS.                                       ',
  'REMARK 350 BIOMOLECULE: 1                                                       ',
  'ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N  ',
  'ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C  ',
  'ATOM      3  C   ALA A   1      13.140   5.970  -5.133  1.00  0.00           C  ',
  'ATOM      4  O   ALA A   1      13.694   5.232  -5.937  1.00  0.00           O  ',
  'ATOM      5  N   GLY A   2      13.815   6.719  -4.261  1.00  0.00           N  ',
  'ATOM      6  CA  GLY A   2A     15.270   6.692  -4.178  1.00  0.00           C  ',
  'ATOM      7  C   GLY A   2A     15.270   6.692  -4.178  1.00  0.00           C  ',
  'TER       8      GLY A   2A                                                     ',
  'ATOM  A1NSW  N   VALB2 403     596.207 556.024-170.280  1.00 31.95           N  ',
  'ATOM  A1NSX  CA  VALB2 403     596.207 556.024-170.280  1.00 31.95           C  ',
  'ATOM  A1NSY  N   LYSB2 404    -596.207-556.024 170.280  1.00 31.95           N  ',
  'TER   A1NSZ      LYSB2 404                                                      ',
  'HETATM   12  O   HOH A 101       1.000   2.000   3.000  1.00  0.00           O  ',
  'HETATM   13  O   HOH A 102       1.000   2.000   3.000  1.00  0.00           O  ',
  'END                                                                             ',
  '',
].join('\n');
let primed = false;

/**
 * Runs scanLines over PRIMER_LINES, once per thread, before the first real scan: a large file can
 * open with thousands of header records, and without this the optimiser would build scanLines from
 * what it saw of those (no atom record, the loop never left), then drop that code at the first
 * atom record and again at the end of the first window, compiling it anew each time.
 */
export function primeScan(): void {
  if (primed) return;
  primed = true;
  const b = Buffer.from(PRIMER_LINES, 'latin1');
  // Enough calls for V8 to give scanLines and its callees the feedback the optimiser reads.
  for (let k = 0; k < 12; k++) {
    const st = newScanState(b.length);
    // As readPdbAtomsFromFile scans (END records may separate frames).
    st.endFrames = true;
    scanLines(b, 54, false, st);
  }
}
