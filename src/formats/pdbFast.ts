/**
 * A PDB reader that works on the file's bytes by their fixed columns and builds only what the
 * summary and the structure diff read. Written by hand because Mol*'s PDB path (the reference,
 * parse.ts) splits the whole text into lines, turns every record into an mmCIF-like token table
 * and then builds a full model (indexes, sequences, secondary structure, bonds) of which the
 * summary reads a few columns; that costs several times the read itself, and twice for a diff.
 *
 * Exactness comes first: this reader reproduces what Mol* 5.11 makes of a PDB file, step by step
 * (the same column cuts, number parsing, label_asym_id and label_seq_id assignment, component
 * and entity inference, atom sorting and residue/chain segmentation). Mol*'s component and entity
 * builders and HETNAM/SEQRES/COMPND parsers are ported as they are (pdbEntities.ts, residueNames.ts:
 * Mol*'s own import its model/types.js, which a parse thread pays for in start time and GC work);
 * its SEQRES alignment is redone over typed arrays with the same traceback. Wherever the reference would do
 * something this reader does not (old Mac line ends, atom lines too short for their coordinates,
 * files without atoms), it declines and the caller uses the reference path; files whose MODEL or
 * END records the reference rewrites first are rewritten the same way by the caller and read here
 * (MODEL_REWRITE). A test compares both paths on every PDB file of the corpus, altered copies of
 * them, and files written by gemmi and Open Babel.
 */

import { readSync } from 'node:fs';
import { runAt } from '../lib/sortedSearch.js';
import { ComponentBuilder, checkEntityPolySeq, EntityBuilder, parseCmpnd, parseHetnam, parseSeqres } from './pdbEntities.js';
import {
  type AtomArrays,
  CHARS,
  type ChunkScan,
  type ChunkStart,
  COORDINATES_NOT_NUMBERS,
  chainStr,
  chunkStarts,
  code,
  fieldFloat,
  Growable,
  insStr,
  joinChunk,
  latin1,
  MODEL_REWRITE,
  newScanState,
  primeScan,
  RESCAN_WITHOUT_END_FRAMES,
  type ScanState,
  SP,
  scanArrays,
  scanLines,
  seqNumber,
  stringCode,
  tokenIns,
  tokenStr,
  trimEnd,
  trimStart,
} from './pdbScan.js';
import { elementSymbol, getMoleculeType, type MoleculeType } from './residueNames.js';
import type { AtomTable } from './summarize.js';
import type { Problem } from './types.js';

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

export { COORDINATES_NOT_NUMBERS, MODEL_REWRITE };

const UNALIGNED = -1;

/**
 * Where the bytes of atom records are read after the scan (component types, chain names, the
 * summary's messages): at(offset) makes the line at that file offset readable in `b` and says
 * where it starts there. Read `b` right after each at(): a file's lines share one buffer.
 */
export interface LineSource {
  readonly b: Uint8Array;
  at(offset: number): number;
}

/** The lines of bytes in memory, `base` being the file offset of b[0]. */
class BytesLines implements LineSource {
  constructor(
    readonly b: Uint8Array,
    private readonly base = 0,
  ) {}
  at(offset: number): number {
    return offset - this.base;
  }
}

/** Enough of a line for every column the phases after the scan read (atom records are 80 columns). */
const LINE_BYTES = 256;
/** What FileLines reads at a time. */
const LINES_BLOCK = 64 * 1024;

/**
 * The lines of an open file, read as they are asked for, a block at a time into `b` (the window
 * the file was scanned through): they are few (a line per component and per chain, and those
 * some of the summary's messages quote).
 */
class FileLines implements LineSource {
  private start = 0;
  private end = 0;
  constructor(
    readonly b: Buffer,
    private readonly fd: number,
    private readonly size: number,
  ) {}
  at(offset: number): number {
    if (offset < this.start || offset >= this.end || (offset + LINE_BYTES > this.end && this.end < this.size)) {
      const want = Math.min(this.b.length, this.size - offset);
      let got = 0;
      for (let read = -1; read !== 0 && got < want; got += read) read = readSync(this.fd, this.b, got, want - got, offset + got);
      this.start = offset;
      this.end = offset + got;
    }
    return offset - this.start;
  }
}

/** Every atom of the first model, with what the summary and the diff read, and Mol*'s order of them. */
export interface PdbAtoms {
  /** The file's bytes, when they were read in one piece (the diff reads atoms from them); undefined for a file scanned through a window. */
  bytes: Uint8Array | undefined;
  /** The atom records' bytes by file offset (lineStart). */
  source: LineSource;
  /** Atoms in the first model. */
  atomCount: number;
  /** Where Mol*'s sorted order takes each atom from (atomOrder, fileIndex); undefined when that order is the file's. */
  order: RunOrder | undefined;
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
  /** Each residue's component (its first atom's residue name), as an index into compNames. */
  residueComp: Int32Array;
  compNames: string[];
  /** Whether a residue has an insertion code (not blank, '.' or '?'). */
  insertionCodes: boolean;
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
  /**
   * The header lines the scan kept of the bytes' first HEADER_BYTES (ScanState.headLines), when one
   * scan of these bytes from their start made them (not a split scan): parse.ts reads the title,
   * method, resolution, id and date from them rather than from the bytes again.
   */
  head?: { lines: string[]; resolution: string | undefined };
}

/**
 * The decline of a file the whole scan found no atom records in, and nothing the reference would
 * warn about: the reference refuses it as holding no atoms, which parse.ts does without it.
 */
export const NO_ATOMS = 'no atoms';

/** Why the fast reader left a file to the reference path (for tests and profiling). */
export let lastDecline = '';
const decline = (why: string): undefined => {
  lastDecline = why;
  return undefined;
};

/**
 * Reads a PDB file's atoms the way Mol* does. Returns undefined when the file needs something
 * only the reference path does (see the module comment); `minLineLength` is how many columns
 * every atom line must have (54 for the coordinates, 60 when occupancy is read); `modelsNormalised`
 * says the text already went through the reference's MODEL rewrites.
 */
export function readPdbAtoms(bytes: Uint8Array, minLineLength = 54, modelsNormalised = false): PdbAtoms | undefined {
  lastDecline = '';
  const refused = bytesRefused(bytes);
  if (refused) return decline(refused);
  // Frames split at END records as long as no MODEL line is seen; one after a split means the
  // reference does not split: scanned again without.
  primeScan();
  const st = newScanState(bytes.length);
  st.endFrames = !modelsNormalised;
  const reason = scanLines(bytes, minLineLength, modelsNormalised, st);
  return atomsAfter(bytes, st, reason, minLineLength, modelsNormalised, true);
}

/** How readPdbAtomsFromFile reads `length` bytes at `position` of its file into `buffer` at `offset`: as many as it gave, 0 at the end. */
export type WindowRead = (buffer: Buffer, offset: number, length: number, position: number) => number;

/** What readPdbAtomsFromFile reads of a file at a time. */
export const WINDOW_BYTES = 4 * 1024 * 1024;
/** Room before a window's bytes for the start of the last atom record before them (ScanState.prevLine): the scan compares a record with it up to column 27. */
const CARRY = 32;
/**
 * A large file's first WARM_BYTES are scanned in windows of WARM_WINDOW (the first, of HEAD_WINDOW,
 * holding the header records the scan reads from the first HEADER_BYTES): scanLines returns
 * often there, so V8 gives it its optimised code on entry, once, instead of on-stack replacement
 * code for the running loop first and the function's own at the next call (two compilations of
 * the largest function in the reader, on a background thread but in the process's CPU time).
 */
const WARM_BYTES = 8 * 1024 * 1024;
const WARM_WINDOW = 64 * 1024;
const HEAD_WINDOW = 256 * 1024;
/** The window, kept from file to file: fresh memory costs a page fault a page, as much as scanning it. */
let sharedWindow: Buffer | undefined;
/** The last window scan's per-atom and per-run arrays, taken over by the next (free by then, as the window is). */
let sharedAtoms: AtomArrays | undefined;
/** The most atoms whose arrays are kept for the next scan (a few MB). */
const KEEP_ATOMS = 1 << 18;

/**
 * readPdbAtoms (54 columns, no MODEL rewrite) of an open file of `size` bytes, read through a
 * window of WINDOW_BYTES used over and over instead of into memory of its own: each window's
 * complete lines are scanned, and the rest (a line cut by the window's end) carried to the next.
 * The atoms' lines are read from the file when the later phases ask (FileLines), or from the window
 * when the file fits in it. Synchronous from start to end: the window is this thread's, and the
 * atoms read from it must be used (summarised) before the next call, and before `fd` is closed.
 * Undefined whenever the answer needs the file in one piece: it holds a NUL byte, a lone carriage
 * return or MODEL records without a number, the scan declines, or the file has no atoms. The
 * caller then reads it whole (readPdbAtoms and the reference), which answers as before.
 * A file still being written (an upload parsed as it arrives, pool/tasks.ts `receive`) is read
 * through `read`, which waits for its bytes; `size` is then the most it may hold, and its end is
 * where `read` first gives nothing.
 */
export function readPdbAtomsFromFile(
  fd: number,
  size: number,
  windowBytes = WINDOW_BYTES,
  read: WindowRead = (buffer, offset, length, position) => readSync(fd, buffer, offset, length, position),
): PdbAtoms | undefined {
  lastDecline = '';
  if (size >= 2 ** 31) return undefined;
  if (!sharedWindow) sharedWindow = Buffer.allocUnsafeSlow(CARRY + WINDOW_BYTES);
  let buf = windowBytes === WINDOW_BYTES ? sharedWindow : Buffer.allocUnsafeSlow(CARRY + windowBytes);
  primeScan();
  const st = newScanState(size, windowBytes === WINDOW_BYTES ? sharedAtoms : undefined);
  st.endFrames = true;
  // File offset of buf[CARRY], and how many of the file's bytes follow it in buf.
  let start = 0;
  let filled = 0;
  let eof = false;
  // A large file's start in short windows (the header's in one): see WARM_BYTES.
  let warmUntil = windowBytes === WINDOW_BYTES && size > WINDOW_BYTES ? WARM_BYTES : 0;
  for (;;) {
    const end = start >= warmUntil ? buf.length : CARRY + (start === 0 ? HEAD_WINDOW : WARM_WINDOW);
    // Up to `size` bytes, as a read of the whole file takes them (fewer when it ends sooner).
    while (!eof && CARRY + filled < end) {
      const got = read(buf, CARRY + filled, Math.min(end - CARRY - filled, size - start - filled), start + filled);
      if (got === 0) eof = true;
      else filled += got;
      if (start + filled >= size) eof = true;
    }
    const valid = CARRY + filled;
    const b = buf.subarray(0, valid);
    let to = valid;
    if (!eof) {
      to = b.lastIndexOf(10, valid - 1) + 1;
      if (to <= CARRY && end < buf.length) {
        warmUntil = 0;
        continue;
      }
      if (to <= CARRY) {
        // A line longer than the window: a larger one for this file.
        const larger = Buffer.allocUnsafeSlow(CARRY + 2 * (buf.length - CARRY));
        buf.copy(larger, 0, 0, valid);
        buf = larger;
        continue;
      }
    }
    // The checks readPdbAtoms and parse.ts make over the whole file, over these lines.
    if (b.indexOf(0, CARRY) >= 0) return undefined;
    for (let cr = b.indexOf(13, CARRY); cr >= 0 && cr < to; cr = b.indexOf(13, cr + 1)) if (b[cr + 1] !== 10) return undefined;
    st.base = start - CARRY;
    if (scanLines(b, 54, false, st, CARRY, to)) return undefined;
    // The resolution's pattern ran on to the window's end: what follows may change its match.
    if (st.headCut && !eof) return undefined;
    if (eof) break;
    if (st.prevLine >= CARRY) {
      buf.copyWithin(0, st.prevLine, st.prevLine + CARRY);
      st.prevLine = 0;
    }
    buf.copyWithin(CARRY, to, valid);
    start += to - CARRY;
    filled = valid - to;
  }
  const source =
    start === 0
      ? new BytesLines(buf.subarray(0, CARRY + filled), -CARRY)
      : new FileLines(buf.length >= LINES_BLOCK ? buf.subarray(0, LINES_BLOCK) : Buffer.allocUnsafe(LINES_BLOCK), fd, start + filled);
  // The arrays as the scan left them (grown or not), for the next file's scan: a small file's only,
  // so that a thread does not hold a large file's arrays after reading it.
  if (windowBytes === WINDOW_BYTES && st.atomLines.length <= KEEP_ATOMS) sharedAtoms = scanArrays(st);
  const atoms = atomsFromScan(source, undefined, st, false, start === 0 ? buf.subarray(CARRY, CARRY + filled) : undefined);
  if (atoms) atoms.head = { lines: st.headLines, resolution: st.headResolution };
  return atoms;
}

/** Why the reader leaves these bytes to the reference before scanning them, or ''. */
function bytesRefused(b: Uint8Array): string {
  // Line starts are kept as 32-bit integers.
  if (b.length >= 2 ** 31) return 'file too large for 32-bit offsets';
  // A lone carriage return ends a line for Mol* but not for the text checks before it.
  for (let cr = b.indexOf(13); cr >= 0; cr = b.indexOf(13, cr + 1)) {
    if (b[cr + 1] !== 10) return 'lone carriage return';
  }
  return '';
}

/** What the scan that ended with `reason` makes of the file (a rescan without END frames when it asks for one). */
function atomsAfter(b: Uint8Array, st: ScanState, reason: string, minLineLength: number, modelsNormalised: boolean, wholeScan: boolean): PdbAtoms | undefined {
  if (reason === RESCAN_WITHOUT_END_FRAMES) {
    st = newScanState(b.length);
    reason = scanLines(b, minLineLength, modelsNormalised, st);
    wholeScan = true;
  }
  if (reason) return decline(reason);
  const atoms = atomsFromScan(new BytesLines(b), b, st, modelsNormalised);
  if (atoms && wholeScan) atoms.head = { lines: st.headLines, resolution: st.headResolution };
  return atoms;
}

/**
 * Scans part of a file (scanChunk, pdbScan.ts) somewhere, in another thread, resolving to the
 * result, or to undefined when it could not.
 */
export type ChunkScanner = (from: number, to: number, prevLine: number, minLineLength: number) => Promise<ChunkScan | undefined>;

/**
 * readPdbAtoms (54 columns, before any MODEL rewrite) with the scan cut into about `parts` parts
 * of at least `minBytes` (chunkStarts): this thread scans the first while `scanner` scans the
 * others, and each is joined to the scan before it when it could be read on its own (joinChunk);
 * a part that could not is scanned here, after the ones before it. Either way the state is the one
 * a scan of the whole file makes, so the result is readPdbAtoms'.
 */
export async function readPdbAtomsSplit(bytes: Uint8Array, scanner: ChunkScanner, parts: number, minBytes: number): Promise<PdbAtoms | undefined> {
  return readPdbAtomsCut(bytes, scanner, chunkStarts(bytes, parts, minBytes));
}

/** readPdbAtomsSplit at the given cuts (tests choose their own; any cut gives readPdbAtoms' result). */
export async function readPdbAtomsCut(bytes: Uint8Array, scanner: ChunkScanner, cuts: ChunkStart[]): Promise<PdbAtoms | undefined> {
  lastDecline = '';
  const refused = bytesRefused(bytes);
  if (refused) return decline(refused);
  if (cuts.length === 0) return readPdbAtoms(bytes);
  const ends = [...cuts.slice(1).map((cut) => cut.from), bytes.length];
  const scans = cuts.map((cut, k) => scanner(cut.from, ends[k], cut.prevLine, 54).catch(() => undefined));
  const st = newScanState(bytes.length);
  st.endFrames = true;
  let reason = scanLines(bytes, 54, false, st, 0, cuts[0].from);
  for (let k = 0; !reason && k < cuts.length; k++) {
    const chunk = await scans[k];
    if (!chunk || !joinChunk(bytes, st, chunk)) reason = scanLines(bytes, 54, false, st, cuts[k].from, ends[k]);
  }
  return atomsAfter(bytes, st, reason, 54, false, false);
}

/**
 * The atoms read from a complete scan of the file, whose atom records `source` reads; `bytes`, the
 * file when it was read whole (PdbAtoms.bytes); `text`, the file's bytes when they are at hand
 * (a file without them, with MODEL records that have no number and no ENDMDL record, is declined).
 */
function atomsFromScan(
  source: LineSource,
  bytes: Uint8Array | undefined,
  st: ScanState,
  modelsNormalised: boolean,
  text: Uint8Array | undefined = bytes,
): PdbAtoms | undefined {
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
  // Without atoms the reference refuses the file, with a warning per MODEL record it renumbers (left to it).
  if (total === 0 && st.unnumberedModels.length > 0) return decline('no atoms, MODEL records renumbered');

  const warnings: Problem[] = [];
  if (endSeparated) {
    warnings.push({
      code: 'frames_separated_by_end',
      message: `The file holds ${st.frames} frames separated by END records (no MODEL records); each frame was read as a model.`,
    });
  }
  // normalisePdbModels rewrites only when the text holds ENDMDL or a bare MODEL line.
  // An ENDMDL record is "ENDMDL" in the text; without the text at hand only such a record says so.
  const rewrites = () =>
    st.bareModelLine || st.endmdlLine || (text ? Buffer.from(text.buffer, text.byteOffset, text.byteLength).indexOf('ENDMDL') >= 0 : undefined);
  const rewritten = st.unnumberedModels.length > 0 ? rewrites() : false;
  if (rewritten === undefined) return decline('MODEL records without a number, and the text is not at hand');
  if (rewritten) {
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
  const heteroNames: [string, string][] = hetnamBlocks.flatMap((block) => [...parseHetnam(block).entries()]);
  const seqresMap: Map<string, string[]> | undefined = seqresLines ? parseSeqres(seqresLines) : undefined;

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
  const built = entitiesOfRuns(source, lineAt, runs, heteroNames, compndBlocks, seqresMap, hasAssemblies);
  if (typeof built === 'string') return decline(built);
  // No atoms, and the reference's entities did not fail on SEQRES (it does when COMPND names no chain).
  if (total === 0) return decline(NO_ATOMS);
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

  const { order: runOrder, chain: runChain } = sortRuns(runEntity, runLabel, runSeq, firstRuns);
  const entityTypes = entityBuilder.types;
  const entityIds = entityBuilder.ids;
  const typeOfEntity = new Map<string, string>();
  for (let k = 0; k < entityIds.length; k++) typeOfEntity.set(entityIds[k], entityTypes[k]);
  const { residueOffsets, residueCount, chainOffsets, chainCount, residueEntityType, residueComp, insertionCodes, order } = cutHierarchy(
    runs,
    firstRuns,
    atomCount,
    runOrder,
    runChain,
    runEntity,
    runSeq,
    useLinear,
    typeOfEntity,
  );
  // The per-atom arrays the summary reads atom by atom go into Mol*'s order, in place (memory stays flat).
  if (order) permuteInPlace(order, atomCount, xs, ys, zs, elements, keys);

  return {
    bytes,
    source,
    atomCount,
    order,
    lineStart: lineAt.subarray(0, total),
    lineLength: atomLength.subarray(0, total),
    x: xs.subarray(0, atomCount),
    y: ys.subarray(0, atomCount),
    z: zs.subarray(0, atomCount),
    element: elements.subarray(0, atomCount),
    // The scan keeps symbols as written; Mol*'s spelling of each (a pure function of it) here.
    symbols: symbols.map(elementSymbol),
    residueOffsets,
    residueCount,
    chainOffsets,
    chainCount,
    residueEntityType,
    residueComp,
    compNames: runs.compNames,
    insertionCodes,
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

/**
 * Components and entities, over every model's atoms in file order (pdbToMmCif): the entity of
 * each run, and the label_asym_id helper in the state this pass leaves it (the next pass goes on
 * from it, as Mol*'s does). A string: the reference's decline.
 */
function entitiesOfRuns(
  source: LineSource,
  lineAt: Int32Array,
  runs: Runs,
  heteroNames: [string, string][],
  compndBlocks: string[][],
  seqresMap: Map<string, string[]> | undefined,
  hasAssemblies: boolean,
): { runEntity: string[]; componentBuilder: ComponentBuilder; entityBuilder: EntityBuilder; labels: LabelAsym } | string {
  const total = runs.total;
  const componentBuilder = new ComponentBuilder(
    total,
    (i) => {
      const s = source.at(lineAt[i]);
      return seqNumber(source.b, s);
    },
    (i) => {
      const s = source.at(lineAt[i]);
      const b = source.b;
      const ts = trimStart(b, s + 12, s + 16);
      return latin1(b, ts, trimEnd(b, ts, s + 16));
    },
  );
  componentBuilder.setNames(heteroNames);
  const entityBuilder = new EntityBuilder();
  for (const block of compndBlocks) entityBuilder.setCompounds(parseCmpnd(block));
  if (seqresMap) entityBuilder.setSeqres(seqresMap);
  entityBuilder.setNames(heteroNames);
  const labels = new LabelAsym(hasAssemblies);
  const runEntity = runEntities(runs, componentBuilder, entityBuilder, labels);
  if (seqresMap) {
    // The reference fails here when SEQRES names chains but no atom is a polymer: leave that to it.
    try {
      checkEntityPolySeq(seqresMap, entityBuilder);
    } catch {
      return 'SEQRES without polymer atoms';
    }
  }
  return { runEntity, componentBuilder, entityBuilder, labels };
}

function runEntities(runs: Runs, componentBuilder: ComponentBuilder, entityBuilder: EntityBuilder, labels: LabelAsym): string[] {
  const { start, compNames, comp: runComp, model, ter } = runs;
  // Components by name: '', '.' and '?' are one name ('') under three codes. Everything below is
  // per name, kept in arrays by the name's first index rather than in maps by the string.
  const firstIndex = new Map<string, number>();
  const byName = new Int32Array(compNames.length);
  for (let k = 0; k < compNames.length; k++) {
    let first = firstIndex.get(compNames[k]);
    if (first === undefined) {
      first = k;
      firstIndex.set(compNames[k], k);
    }
    byName[k] = first;
  }
  const moleculeTypes: (MoleculeType | undefined)[] = new Array(compNames.length);
  // getEntityId gives the same entity for the same label_asym_id and component every time: worked out once per pair.
  const entities = new Map<string, (string | undefined)[]>();
  const runEntity: string[] = new Array(runs.count);
  let lastAsym = '';
  let lastByComp: (string | undefined)[] | undefined;
  for (let r = 0; r < runs.count; r++) {
    const i = start[r];
    const k = byName[runComp[r]];
    const comp = compNames[k];
    let moleculeType = moleculeTypes[k];
    if (moleculeType === undefined) {
      // The first atom of a component decides its type (ComponentBuilder.add reads its residue's atom names).
      moleculeType = getMoleculeType(componentBuilder.add(comp, i).type, comp);
      moleculeTypes[k] = moleculeType;
    }
    const asym = labels.run(asymOfRun(runs, r), model[r], ter[r] === 1, runEnd(runs, r) - i);
    let byComp = asym === lastAsym ? lastByComp : entities.get(asym);
    if (!byComp) {
      byComp = new Array(compNames.length);
      entities.set(asym, byComp);
    }
    lastAsym = asym;
    lastByComp = byComp;
    let entity = byComp[k];
    if (entity === undefined) {
      entity = entityBuilder.getEntityId(comp, moleculeType, asym);
      byComp[k] = entity;
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
  // Identical chains (homo-oligomers) align the same way: once. Found by comparing the lists
  // (a few chains, most differing early): a key joined from both costs more than an alignment.
  const done: { seqres: string[]; list: string[]; alignment: number[] }[] = [];
  for (const [chain, list] of observed) {
    const seqres = seqresMap.get(chain);
    if (seqres && seqres.length > 0) {
      let alignment = done.find((d) => sameStrings(d.list, list) && sameStrings(d.seqres, seqres))?.alignment;
      if (!alignment) {
        alignment = alignToSeqres(seqres, list);
        done.push({ seqres, list, alignment });
      }
      alignments.set(chain, alignment);
    }
  }
  return alignments;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
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
    if (model !== currModel || currAsym !== asym) {
      currModel = model;
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
 * label_seq_id. A stable sort of the runs gives the same order (`order`, undefined when the runs
 * are in it). `chain`: each run's chain rank (an entity and a label: equal ranks, the same chain).
 * Each pass is a function of its own: a loop optimised while it runs (on-stack replacement) is
 * compiled with the code after it, which has no feedback yet.
 */
function sortRuns(runEntity: string[], runLabel: string[], runSeq: Int32Array, firstRuns: number): { order: Int32Array | undefined; chain: Int32Array } {
  const chain = new Int32Array(firstRuns);
  const entityOfChain = rankChains(runEntity, runLabel, firstRuns, chain);
  if (runsInOrder(chain, entityOfChain, runSeq, firstRuns)) return { order: undefined, chain };
  // The stable sort by (entity, chain, label_seq_id), in two steps: the runs bucketed by chain (a
  // chain rank is of an entity and a label: one entity each), the buckets in (entity, chain) order,
  // file order kept within each; then a bucket whose label_seq_ids go down sorted by them (stably).
  const order = bucketByChain(chain, entityOfChain, firstRuns);
  sortBuckets(order, chain, runSeq);
  return { order, chain };
}

/** Each run's chain rank into `chain`; returns the entity rank of each chain rank. */
function rankChains(runEntity: string[], runLabel: string[], firstRuns: number, chain: Int32Array): number[] {
  const entityRank = new Map<string, number>();
  const chainRank = new Map<string, number>();
  const entityOfChain: number[] = [];
  let lastEntity = '';
  let lastLabel = '';
  let lastChainRank = -1;
  for (let r = 0; r < firstRuns; r++) {
    const entity = runEntity[r];
    const label = runLabel[r];
    if (r > 0 && entity === lastEntity && label === lastLabel) {
      chain[r] = lastChainRank;
      continue;
    }
    const key = `${entity}\u0000${label}`;
    let cr = chainRank.get(key);
    if (cr === undefined) {
      cr = chainRank.size;
      chainRank.set(key, cr);
      let er = entityRank.get(entity);
      if (er === undefined) {
        er = entityRank.size;
        entityRank.set(entity, er);
      }
      entityOfChain.push(er);
    }
    chain[r] = cr;
    lastEntity = entity;
    lastLabel = label;
    lastChainRank = cr;
  }
  return entityOfChain;
}

function runsInOrder(chain: Int32Array, entityOfChain: number[], runSeq: Int32Array, firstRuns: number): boolean {
  for (let r = 1; r < firstRuns; r++) {
    const a = chain[r - 1];
    const c = chain[r];
    if (a === c) {
      if (runSeq[r - 1] > runSeq[r]) return false;
    } else if (entityOfChain[a] > entityOfChain[c] || (entityOfChain[a] === entityOfChain[c] && a > c)) return false;
  }
  return true;
}

/** The runs bucketed by chain, the buckets in (entity, chain) order, file order within each. */
function bucketByChain(chain: Int32Array, entityOfChain: number[], firstRuns: number): Int32Array {
  const chains = entityOfChain.length;
  const at = new Int32Array(chains);
  for (let r = 0; r < firstRuns; r++) at[chain[r]]++;
  const buckets = Array.from({ length: chains }, (_, c) => c).sort((a, c) => entityOfChain[a] - entityOfChain[c] || a - c);
  let next = 0;
  for (const c of buckets) {
    const count = at[c];
    at[c] = next;
    next += count;
  }
  const order = new Int32Array(firstRuns);
  for (let r = 0; r < firstRuns; r++) order[at[chain[r]]++] = r;
  return order;
}

/** Within each chain's bucket of `order`, the runs sorted stably by label_seq_id where it goes down. */
function sortBuckets(order: Int32Array, chain: Int32Array, runSeq: Int32Array): void {
  const n = order.length;
  let scratch: Int32Array | undefined;
  for (let k = 0, end = 0; k < n; k = end) {
    end = k + 1;
    let down = false;
    let low = runSeq[order[k]];
    let high = low;
    const bucket = chain[order[k]];
    while (end < n && chain[order[end]] === bucket) {
      const seq = runSeq[order[end]];
      if (seq < runSeq[order[end - 1]]) down = true;
      low = seq < low ? seq : low;
      high = seq > high ? seq : high;
      end++;
    }
    if (!down) continue;
    // Chains read from one column often gather many copies of a chain in one bucket, each going up:
    // a counting sort by label_seq_id (stable, as the comparison sort is) when their range is small.
    if (high - low <= 4 * (end - k) + 1024) {
      if (!scratch || scratch.length < end - k) scratch = new Int32Array(end - k);
      countingSortBySeq(order, k, end, runSeq, low, high, scratch);
    } else
      order.set(
        Array.from(order.subarray(k, end)).sort((a, c) => runSeq[a] - runSeq[c]),
        k,
      );
  }
}

/** order[start, end) sorted stably by runSeq, whose values there lie in [low, high], through `scratch` (at least end - start long). */
function countingSortBySeq(order: Int32Array, start: number, end: number, runSeq: Int32Array, low: number, high: number, scratch: Int32Array): void {
  const at = new Int32Array(high - low + 2);
  for (let k = start; k < end; k++) at[runSeq[order[k]] - low + 1]++;
  for (let v = 1; v < at.length; v++) at[v] += at[v - 1];
  for (let k = start; k < end; k++) {
    const r = order[k];
    scratch[at[runSeq[r] - low]++] = r;
  }
  order.set(scratch.subarray(0, end - start), start);
}

/**
 * The residue and chain cuts (findHierarchyOffsets) over the sorted runs, as positions in Mol*'s
 * order (each with the end appended), the entity type of each residue's chain, and where that
 * order takes its atoms from when it is not the file's.
 */
function cutHierarchy(
  runs: Runs,
  firstRuns: number,
  atomCount: number,
  runOrder: Int32Array | undefined,
  runChain: Int32Array,
  runEntity: string[],
  runSeq: Int32Array,
  useLinear: boolean,
  typeOfEntity: Map<string, string>,
) {
  const residueOffsets = new Growable(Math.max(16, firstRuns + 1));
  const residueComp = new Int32Array(firstRuns);
  const chainOffsets = new Growable(64);
  const residueEntityType: (string | undefined)[] = [];
  const { seqTok, ins: runIns, comp: runComp } = runs;
  let insertionCodes = false;
  // Per sorted run: the file index of its first atom, and its position (atoms in a run are consecutive in both).
  const from = runOrder ? new Int32Array(firstRuns) : undefined;
  const to = runOrder ? new Int32Array(firstRuns + 1) : undefined;
  let at = 0;
  let prevRun = -1;
  let chainType: string | undefined;
  for (let k = 0; k < firstRuns; k++) {
    const r = runOrder ? runOrder[k] : k;
    const i0 = runs.start[r];
    const end = runEnd(runs, r);
    if (prevRun < 0) {
      residueComp[residueOffsets.length] = runComp[r];
      residueOffsets.push(at);
      chainOffsets.push(at);
      chainType = typeOfEntity.get(runEntity[r]);
      residueEntityType.push(chainType);
    } else {
      const p = prevRun;
      const newChain = runChain[p] !== runChain[r];
      const newResidue = newChain || (useLinear && runSeq[p] !== runSeq[r]) || seqTok[p] !== seqTok[r] || tokenIns(runIns[p]) !== tokenIns(runIns[r]);
      if (newChain) {
        chainOffsets.push(at);
        chainType = typeOfEntity.get(runEntity[r]);
      }
      if (newResidue) {
        residueComp[residueOffsets.length] = runComp[r];
        residueOffsets.push(at);
        residueEntityType.push(chainType);
      }
    }
    // A residue's runs share its insertion code (a change of it starts a residue), so any run's is any residue's.
    const ins = runIns[r];
    if (ins !== SP && ins !== 46 && ins !== 63) insertionCodes = true;
    if (from && to) {
      from[k] = i0;
      to[k] = at;
    }
    at += end - i0;
    prevRun = r;
  }
  if (to) to[firstRuns] = atomCount;
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
    residueComp: residueComp.subarray(0, residueCount),
    insertionCodes,
    order: from && to ? { from, to } : undefined,
  };
}

/**
 * Mol*'s order of the first model's atoms as runs: the atoms at positions to[k] .. to[k + 1] - 1
 * are the file's from[k] .. (consecutive in both; to[k] ascending, with the atom count appended).
 * Kept by run rather than by atom: fresh memory costs a page fault a page, and a large file's runs
 * are far fewer than its atoms.
 */
export interface RunOrder {
  from: Int32Array;
  to: Int32Array;
}

/** The file index (within the first model) of the atom at position i of Mol*'s order. */
export function fileIndex(order: RunOrder, i: number): number {
  const run = runAt(order.to, i);
  return order.from[run] + (i - order.to[run]);
}

/** The file index of the atom at each position of Mol*'s order. */
export function atomOrder(order: RunOrder): Int32Array {
  const { from, to } = order;
  const atoms = new Int32Array(to[from.length]);
  for (let k = 0; k < from.length; k++) for (let i = to[k], f = from[k]; i < to[k + 1]; i++, f++) atoms[i] = f;
  return atoms;
}

/**
 * a[position] = a[file index] for each array, through one scratch buffer of 4 bytes an atom
 * (memory stays near flat): the 8-byte keys go through it as two halves. Each gather is a function
 * of its own: a loop optimised while it runs (on-stack replacement) is compiled with the code after
 * it, which has no feedback yet.
 */
function permuteInPlace(order: RunOrder, n: number, x: Float32Array, y: Float32Array, z: Float32Array, element: Uint8Array, key: Float64Array): void {
  const scratch = new ArrayBuffer(n * 4);
  const singles = new Float32Array(scratch, 0, n);
  singles.set(x.subarray(0, n));
  gatherSingles(order, singles, x);
  singles.set(y.subarray(0, n));
  gatherSingles(order, singles, y);
  singles.set(z.subarray(0, n));
  gatherSingles(order, singles, z);
  const bytes = new Uint8Array(scratch, 0, n);
  bytes.set(element.subarray(0, n));
  gatherBytes(order, bytes, element);
  const halves = new Uint32Array(key.buffer, key.byteOffset, 2 * n);
  const words = new Uint32Array(scratch, 0, n);
  copyHalf(halves, 0, words, n);
  gatherHalf(order, words, halves, 0);
  copyHalf(halves, 1, words, n);
  gatherHalf(order, words, halves, 1);
}

function gatherSingles(order: RunOrder, from: Float32Array, into: Float32Array): void {
  const { from: starts, to } = order;
  for (let k = 0; k < starts.length; k++) {
    const end = to[k + 1];
    for (let i = to[k], f = starts[k]; i < end; i++, f++) into[i] = from[f];
  }
}

function gatherBytes(order: RunOrder, from: Uint8Array, into: Uint8Array): void {
  const { from: starts, to } = order;
  for (let k = 0; k < starts.length; k++) {
    const end = to[k + 1];
    for (let i = to[k], f = starts[k]; i < end; i++, f++) into[i] = from[f];
  }
}

/** words[i] = the low (half 0) or high (half 1) 32 bits of the i-th 8-byte value in `halves`. */
function copyHalf(halves: Uint32Array, half: number, words: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) words[i] = halves[2 * i + half];
}

function gatherHalf(order: RunOrder, from: Uint32Array, halves: Uint32Array, half: number): void {
  const { from: starts, to } = order;
  for (let k = 0; k < starts.length; k++) {
    const end = to[k + 1];
    for (let i = to[k], f = starts[k]; i < end; i++, f++) halves[2 * i + half] = from[f];
  }
}

/** Mol*'s alignCompIdsToSeqres (pdb/atom-site.js): 1-based SEQRES positions of observed residues. */
function alignToSeqres(seqres: string[], observed: string[]): number[] {
  const n = observed.length;
  if (n === 0) return [];
  if (seqres.length === 0) return new Array(n).fill(UNALIGNED);
  const positions = alignedPositions(observed, seqres);
  if (positions) return positions;
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

/** Per-atom readers over the atoms in Mol*'s order (position → file index through `order`, made per atom here: the diff reads every atom). */
export function pdbAtomReaders(atoms: PdbAtoms) {
  const b = atoms.bytes;
  if (!b) throw new Error('pdbAtomReaders reads the atoms of a file read in one piece');
  const { lineStart, lineLength, nameSuffix, x, y, z, element, symbols, atomKeys, atomKeyStrings } = atoms;
  const order = atoms.order ? atomOrder(atoms.order) : undefined;
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
  readonly residueComps: { index: Int32Array; names: readonly string[] };
  readonly hasInsertionCodes: boolean;
  private readonly src: LineSource;
  private readonly lineStart: Int32Array;
  private readonly order: RunOrder | undefined;
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
    this.residueComps = { index: atoms.residueComp, names: atoms.compNames };
    this.hasInsertionCodes = atoms.insertionCodes;
    this.src = atoms.source;
    this.lineStart = atoms.lineStart;
    this.order = atoms.order;
  }
  /** Where atom i's line starts in this.src.b (read it before the next call). */
  private line(i: number): number {
    return this.src.at(this.lineStart[this.file(i)]);
  }
  /** The file index of the atom at position i (the summary asks for few: messages, chain names). */
  private file(i: number): number {
    return this.order ? fileIndex(this.order, i) : i;
  }
  typeSymbol(i: number): string {
    return this.atoms.symbols[this.atoms.element[i]];
  }
  altId(i: number): string {
    const s = this.line(i);
    const c = this.src.b[s + 16];
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
    const b = this.src.b;
    const ts = trimStart(b, s + 12, s + 16);
    return tokenStr(latin1(b, ts, trimEnd(b, ts, s + 16)));
  }
  atomName(i: number): string {
    const suffix = this.atoms.nameSuffix.get(this.file(i));
    return suffix === undefined ? this.authAtomName(i) : `${this.authAtomName(i)}_${suffix}`;
  }
  compId(i: number): string {
    const s = this.line(i);
    const b = this.src.b;
    const ts = trimStart(b, s + 17, s + 21);
    const te = trimEnd(b, ts, s + 21);
    const k = code(b, ts, te);
    let v = this.comps.get(k);
    if (v === undefined) {
      v = tokenStr(latin1(b, ts, te));
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
    const s = this.line(this.residueOffsets[r]);
    return insStr(this.src.b, s);
  }
  authSeqId(r: number): number {
    const s = this.line(this.residueOffsets[r]);
    return seqNumber(this.src.b, s);
  }
  private chainOfAtom(atom: number): number {
    return runAt(this.atoms.chainOffsets, atom, this.chainCount - 1);
  }
  chainName(a: number): string {
    const s = this.line(this.atoms.chainOffsets[this.chainOfAtom(a)]);
    return chainStr(this.src.b, s);
  }
  chainNameAt(c: number): string {
    const s = this.line(this.atoms.chainOffsets[c]);
    return chainStr(this.src.b, s);
  }
  entityType(r: number): string | undefined {
    return this.atoms.residueEntityType[r];
  }
  componentName(comp: string): string | undefined {
    return this.atoms.componentName(comp);
  }
  atomKey(i: number): number | string {
    const key = this.atoms.atomKeys[i];
    return key < 0 ? (this.atoms.atomKeyStrings.get(this.file(i)) as string) : key;
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
  if (identical(seqA, seqB)) return { aliA: [...seqA], aliB: [...seqB] };
  const { bits, w, start } = alignmentTrace(seqA, seqB);
  let i = n;
  let j = m;
  let mat = start;
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

/**
 * The forward pass of alignSequences: per cell (i, j) the traceback bits, and the matrix the
 * traceback starts in at (n, m).
 */
function alignmentTrace(seqA: readonly string[], seqB: readonly string[]): { bits: Uint8Array; w: number; start: 'S' | 'V' | 'H' } {
  const n = seqA.length;
  const m = seqB.length;
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
  const bq = new Int32Array(m);
  for (let j = 0; j < m; j++) bq[j] = idOf(seqB[j]);
  const inB = ids.size;
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = idOf(seqA[i]);
  // cA[i]: how many of the first i residues of A occur in B at all (only those can score a match).
  const cA = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) cA[i + 1] = cA[i] + (a[i] < inB ? 1 : 0);
  const bits = alignmentCells((n + 1) * w);
  // The band is exact for any floor at most the optimal score (see fillBand), and narrower the
  // closer the floor is to it. The score of one path found greedily (pathScore) is such a floor,
  // usually close. When it is below a guess of the optimal score, a first band from the guess:
  // if its best path scores less than the guess, that score is a true floor for a second band.
  // The guess charges what usually costs: a few gap runs, residues of A that match nothing in B
  // (waters, ligands) and residues of B without a partner. It only decides the band's width.
  const top = 5 * Math.min(cA[n], m);
  const guess = top - 64 - (top >> 5) - (n - cA[n]) - Math.abs(m - cA[n]);
  const path = pathScore(a, bq);
  let last: ReturnType<typeof fillBand>;
  if (path >= guess) last = fillBand(a, bq, cA, bits, path);
  else {
    last = fillBand(a, bq, cA, bits, guess);
    if (last.best < guess) last = fillBand(a, bq, cA, bits, Math.max(last.best, path));
  }
  const { lastS, lastV, lastH } = last;
  return { bits, w, start: lastS >= lastV ? 'S' : lastV >= lastH ? 'V' : 'H' };
}

const identical = (seqA: readonly string[], seqB: readonly string[]): boolean => seqA.length === seqB.length && seqA.every((x, k) => x === seqB[k]);

/**
 * What alignToSeqres makes of alignSequences(observed, seqres), read from the traceback itself:
 * per observed residue, the 1-based SEQRES position it is aligned with, or UNALIGNED. Undefined
 * where the two could differ: a residue named "-" (which alignToSeqres takes for a gap), or a
 * traceback step that drops a residue (Mol*'s trace has such steps; the bits never lead to them).
 */
function alignedPositions(observed: readonly string[], seqres: readonly string[]): number[] | undefined {
  if (observed.includes('-') || seqres.includes('-')) return undefined;
  const n = observed.length;
  const m = seqres.length;
  const result: number[] = new Array(n).fill(UNALIGNED);
  if (identical(observed, seqres)) {
    for (let k = 0; k < n; k++) result[k] = k + 1;
    return result;
  }
  const { bits, w, start } = alignmentTrace(observed, seqres);
  let i = n;
  let j = m;
  let mat = start;
  while (i > 0 && j > 0) {
    const cell = bits[i * w + j];
    if (mat === 'S') {
      if (cell & S_DIAG) {
        result[i - 1] = j;
        --i;
        --j;
      } else if (cell & S_IS_V) mat = 'V';
      else if (cell & S_IS_H) mat = 'H';
      else return undefined;
    } else if (mat === 'V') {
      if (cell & V_EXT) --i;
      else if (cell & V_OPEN) {
        --i;
        mat = 'S';
      } else return undefined;
    } else {
      if (cell & H_EXT) --j;
      else if (cell & H_OPEN) {
        --j;
        mat = 'S';
      } else return undefined;
    }
  }
  return result;
}

/** Residues that must agree after a difference for pathScore to resume matching, and how far ahead it looks for them. */
const SYNC = 3;
const LOOKAHEAD = 256;

/** Whether a[i..] and b[j..] agree on their next SYNC residues (or on all that is left of either). */
function inSync(a: Int32Array, i: number, b: Int32Array, j: number): boolean {
  const k = Math.min(SYNC, a.length - i, b.length - j);
  if (k <= 0) return false;
  for (let t = 0; t < k; t++) if (a[i + t] !== b[j + t]) return false;
  return true;
}

/**
 * The score of one alignment path of a and b, found greedily: a match where the residues agree,
 * else the shortest gap (up to LOOKAHEAD) after which SYNC residues agree, else a mismatch. Gaps
 * are charged -11, then -1 per further step, except a leading one, which Mol*'s border charges -11
 * whatever its length: no step costs less than Mol*'s recurrences let it, so the optimal score is
 * at least this, which makes it a floor for fillBand.
 */
function pathScore(a: Int32Array, b: Int32Array): number {
  const n = a.length;
  const m = b.length;
  let i = 0;
  let j = 0;
  let score = 0;
  // 0: after a match or mismatch (or at the start); 1: in a run of A's residues against gaps; 2: of B's.
  let state = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      score += 5;
      i++;
      j++;
      state = 0;
      continue;
    }
    let skip = 0;
    let skipA = false;
    for (let d = 1; d <= LOOKAHEAD && skip === 0 && (j + d < m || i + d < n); d++) {
      if (j + d < m && inSync(a, i, b, j + d)) skip = d;
      else if (i + d < n && inSync(a, i + d, b, j)) {
        skip = d;
        skipA = true;
      }
    }
    if (skip === 0) {
      score -= 3;
      i++;
      j++;
      state = 0;
    } else if (i === 0 && j === 0) {
      // A leading gap: Mol*'s border (S[k][0] = S[0][k] = -11) charges -11 whatever its length,
      // and a match follows it (the residues after the gap agree).
      score += GAP;
      if (skipA) i += skip;
      else j += skip;
    } else if (skipA) {
      score += state === 1 ? EXT * skip : GAP + EXT * (skip - 1);
      i += skip;
      state = 1;
    } else {
      score += state === 2 ? EXT * skip : GAP + EXT * (skip - 1);
      j += skip;
      state = 2;
    }
  }
  if (i < n) score += state === 1 ? EXT * (n - i) : GAP + EXT * (n - i - 1);
  else if (j < m) score += state === 2 ? EXT * (m - j) : GAP + EXT * (m - j - 1);
  return score;
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

/** Scratch for fillBand's four rows of scores, kept between calls up to this many entries (each call fills what it uses). */
const KEPT_BAND_ROW_ENTRIES = 1 << 20;
let bandRowsScratch = new Int32Array(0);

/** Room for fillBand's four rows of `w` scores. */
function bandRows(w: number): Int32Array {
  const size = 4 * w;
  if (size > KEPT_BAND_ROW_ENTRIES) return new Int32Array(size);
  if (bandRowsScratch.length < size) bandRowsScratch = new Int32Array(Math.max(size, 4096));
  return bandRowsScratch;
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
 * Within the band, a cell whose score so far plus the bound's second part (the most the rest can
 * add, whatever the state) falls short of `floor` is set to -Infinity, as cells outside are: a
 * cell of an optimal path keeps its true score (its predecessor on that path does, by induction),
 * so the same argument holds; a row then starts at the last row's first live cell and stops
 * where only a dead cell could carry a path on.
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
  const rows = bandRows(w);
  let sPrev = rows.subarray(0, w);
  let vPrev = rows.subarray(w, 2 * w);
  let sRow = rows.subarray(2 * w, 3 * w).fill(NEG);
  let vRow = rows.subarray(3 * w, 4 * w).fill(NEG);
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
  // Where the last row's walk found the band's ends.
  let searchLo = 1;
  let searchHi = m;
  // The last row's first and last live cells (row 0: all of it).
  let keptLo = 0;
  let keptHi = m;
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
      // The first j in [1, peak] and the last in [peak, m] where the bound reaches floor. The bound
      // rises to the peak and falls after it, so a walk from the last row's ends (which move little
      // from row to row) finds the same two, in fewer steps than a search from scratch.
      const f = floor + 11;
      let at = searchLo < 1 ? 1 : searchLo > peak ? peak : searchLo;
      if (bandBound(at, c, r, m, rest) >= f) while (at > 1 && bandBound(at - 1, c, r, m, rest) >= f) at--;
      else while (bandBound(at, c, r, m, rest) < f) at++;
      lo = at;
      searchLo = at;
      at = searchHi < peak ? peak : searchHi > m ? m : searchHi;
      if (bandBound(at, c, r, m, rest) >= f) while (at < m && bandBound(at + 1, c, r, m, rest) >= f) at++;
      else while (bandBound(at, c, r, m, rest) < f) at--;
      hi = at;
      searchHi = at;
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
    // Cells left of the last row's first live one are reached only along this row from column 0,
    // which is outside the band unless it starts at column 1.
    const start = lo > 1 && keptLo > lo ? keptLo : lo;
    let end = start - 1;
    let rowLo = m + 1;
    let rowHi = 0;
    if (start <= hi) {
      const ai = a[i - 1];
      const row = i * w;
      let sLeft = sRow[start - 1]; // S[i][j-1]: GAP at column 0, else outside the band or left out
      let hLeft = NEG; // H[i][j-1]: -Infinity at column 0 and outside the band
      let sDiag = sPrev[start - 1]; // S[i-1][j-1]
      // Past the last row's last live cell and the one after it, only H carries a path on.
      const alone = keptHi + 2;
      for (let j = start; j <= hi; j++) {
        const sUp = sPrev[j];
        const v1 = sUp + GAP;
        const v2 = vPrev[j] + EXT;
        const v = v1 > v2 ? v1 : v2;
        const h1 = sLeft + GAP;
        const h2 = hLeft + EXT;
        const h = h1 > h2 ? h1 : h2;
        const d = sDiag + (ai === bq[j - 1] ? 5 : -3);
        const sc = d > v ? (d > h ? d : h) : v > h ? v : h;
        const after = m - j;
        end = j;
        sDiag = sUp;
        if (sc + 7 * (r < after ? r : after) - rest - after < floor) {
          // No path through this cell reaches floor (its best score so far, plus the most the rest
          // can add): -Infinity, as outside the band.
          vRow[j] = NEG;
          sRow[j] = NEG;
          sLeft = NEG;
          hLeft = NEG;
          if (j >= alone) break;
          continue;
        }
        if (j < rowLo) rowLo = j;
        rowHi = j;
        vRow[j] = v;
        sRow[j] = sc;
        bits[row + j] =
          (sc === d ? S_DIAG : 0) |
          (sc === v ? S_IS_V : 0) |
          (sc === h ? S_IS_H : 0) |
          (v === v2 ? V_EXT : 0) |
          (v === v1 ? V_OPEN : 0) |
          (h === h2 ? H_EXT : 0) |
          (h === h1 ? H_OPEN : 0);
        sLeft = sc;
        hLeft = h;
      }
      lastH = end === m ? hLeft : NEG;
    } else lastH = NEG;
    lastS = sRow[m];
    lastV = vRow[m];
    oldLo = prevLo;
    oldHi = prevHi;
    prevLo = start;
    prevHi = end;
    keptLo = rowLo;
    keptHi = rowHi;
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
