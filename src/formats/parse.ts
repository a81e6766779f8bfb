import type { CifFrame } from 'molstar/lib/mol-io/reader/cif.js';
import type { ReaderResult } from 'molstar/lib/mol-io/reader/result.js';
import type { Model, Trajectory } from 'molstar/lib/mol-model/structure.js';
import { type RecordScan, type RecordSpan, recordText, scanMol2, scanSdf, scanXyz } from './checks.js';
import { coreCifElements } from './cifElements.js';
import { readMmcifFast } from './cifFast.js';
import {
  type ChunkScanner,
  lastDecline,
  MODEL_REWRITE,
  NO_ATOMS,
  type PdbAtoms,
  pdbAtomTable,
  readPdbAtoms,
  readPdbAtomsCut,
  readPdbAtomsFromFile,
  type WindowRead,
} from './pdbFast.js';
import { type ChunkStart, chunkStarts, HEADER_BYTES } from './pdbScan.js';
import { describeRecords, mol2Compositions, type RecordComposition, sdfCompositions, xyzCompositions } from './records.js';
import { escapeControlCharacters, isNumberToken, nulByteRefusal, refusedBeforeReading, safeOutcome } from './safeText.js';
import { inspectSessionBytes } from './session.js';
import { modelAtomTable, summarizeAtoms } from './summarize.js';
import { type CifAtoms, cifAtomTable } from './summarizeCif.js';
import { FORMAT_LABELS, type Format, type ParseOutcome, type Problem, type StructureSummary } from './types.js';

const PARSER = 'molstar 5.11.0';

/**
 * Mol*'s readers and model builders, loaded when a file first needs them: the byte-level PDB and
 * mmCIF readers need none of them, and Mol*'s model code (its model/types.js above all) costs a
 * parse thread start time and a large table on its heap that every major GC marks again.
 */
const molstar = {
  task: () => import('molstar/lib/mol-task/index.js'),
  cif: () => import('molstar/lib/mol-io/reader/cif.js'),
  pdb: () => import('molstar/lib/mol-io/reader/pdb/parser.js'),
  mol2: () => import('molstar/lib/mol-io/reader/mol2/parser.js'),
  sdf: () => import('molstar/lib/mol-io/reader/sdf/parser.js'),
  xyz: () => import('molstar/lib/mol-io/reader/xyz/parser.js'),
  pdbModel: () => import('molstar/lib/mol-model-formats/structure/pdb.js'),
  mmcifModel: () => import('molstar/lib/mol-model-formats/structure/mmcif.js'),
  cifCoreModel: () => import('molstar/lib/mol-model-formats/structure/cif-core.js'),
  mol2Model: () => import('molstar/lib/mol-model-formats/structure/mol2.js'),
  sdfModel: () => import('molstar/lib/mol-model-formats/structure/sdf.js'),
  xyzModel: () => import('molstar/lib/mol-model-formats/structure/xyz.js'),
};

class ParseFailure extends Error {
  constructor(
    message: string,
    readonly line?: number,
    /** Every problem found, when there is more than one (the message names the first). */
    readonly problems?: Problem[],
  ) {
    super(message);
  }
}

/**
 * The first sound record of a multi-record file. Broken records among sound ones become warnings
 * (the file is kept, and the report says which records a reader will skip); a file with no sound
 * record is refused with the problems of its records.
 */
function soundRecords(scan: RecordScan, format: Format, warnings: Problem[]): { first: RecordSpan; count: number; sound: RecordSpan[] } {
  const label = FORMAT_LABELS[format];
  if (scan.fileProblems.length > 0 && scan.records.every((r) => r.problems.length > 0)) {
    const all = [...scan.records.flatMap((r) => r.problems), ...scan.fileProblems].slice(0, 20);
    throw new ParseFailure(all[0].message, all[0].line, all);
  }
  const sound = scan.records.filter((r) => r.problems.length === 0);
  if (sound.length === 0) {
    const all = scan.records.flatMap((r) => r.problems).slice(0, 20);
    if (all.length === 0) throw new ParseFailure(`The ${label} file holds no records.`);
    throw new ParseFailure(all[0].message, all[0].line, all);
  }
  for (const bad of scan.records.filter((r) => r.problems.length > 0).slice(0, 20)) {
    for (const p of bad.problems)
      warnings.push({ ...p, code: `record_skipped_${p.code}`, message: `${p.message} This record is skipped; the others are read.` });
  }
  for (const p of scan.fileProblems) warnings.push({ ...p, message: `${p.message} The records before it are read.` });
  return { first: sound[0], count: sound.length, sound };
}

function recordExtra(record: RecordSpan): Partial<StructureSummary> {
  const extra: Partial<StructureSummary> = {};
  if (record.title) extra.title = record.title;
  if (record.bonds !== undefined) extra.bonds = record.bonds;
  return extra;
}

function unwrap<T>(result: ReaderResult<T>, label: string, warnings: Problem[]): T {
  if (result.isError) {
    const line = result.line >= 0 ? result.line : undefined;
    throw new ParseFailure(`The ${label} reader stopped: ${result.message}`, line);
  }
  for (const w of result.warnings) warnings.push({ code: 'reader_warning', message: w });
  return result.result;
}

/**
 * Parses `text` as `format` with Mol*'s readers, summarises the first model and checks it.
 * Never throws: every reader exception becomes a rejection with a reason. The outcome's text is
 * safe to store (safeText.ts).
 */
export async function parseStructure(text: string, format: Format, options: { directCif?: boolean } = {}): Promise<ParseOutcome> {
  return refusedBeforeReading(text, format, PARSER) ?? safeOutcome(await readStructure(text, format, options), text);
}

async function readStructure(text: string, format: Format, options: { directCif?: boolean }): Promise<ParseOutcome> {
  const started = performance.now();
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const report = () => ({ problems, warnings, parser: PARSER, parseMs: Math.round(performance.now() - started) });
  const label = FORMAT_LABELS[format];
  try {
    if (format === 'cxs') {
      const bytes = Buffer.from(text, 'latin1');
      return inspectSessionBytes(bytes, bytes.length);
    }
    const read = await readTrajectory(text, format, warnings, options.directCif ?? text.length >= DIRECT_CIF_BYTES);
    const noAtoms = `The ${label} file contains no atoms${format === 'pdb' ? ' (no ATOM or HETATM records)' : ''}.`;
    let summary: StructureSummary;
    // The kind of a multi-record file is its first record's (a trajectory of water is no macromolecule).
    let kind: ReturnType<typeof kindOf> | undefined;
    if ('direct' in read) {
      summary = summarizeAtoms(read.direct.table, problems, warnings, true);
      summary.models = read.direct.models;
      Object.assign(summary, headerInfo(frameHeader(read.frame)), read.extra);
    } else {
      const { trajectory, extra, molecules, typeSymbols, compositions } = read;
      if (trajectory.frameCount === 0) {
        problems.push({ code: 'no_atoms', message: noAtoms });
        return { ok: false, format, status: 422, code: 'invalid_structure', message: noAtoms, report: report() };
      }
      const { Task } = await molstar.task();
      const first = await Task.resolveInContext(trajectory.getFrameAtIndex(0));
      // Residue checks for residue-based files only (a small-molecule CIF's one "residue" is made up).
      const table = modelAtomTable(first);
      if (typeSymbols) table.typeSymbol = (i) => typeSymbols[i];
      summary = summarizeAtoms(table, problems, warnings, (format === 'pdb' || format === 'cif' || format === 'bcif') && !extra.dialect);
      summary.models = trajectory.frameCount;
      if (molecules !== undefined) summary.molecules = molecules;
      Object.assign(summary, headerInfo(modelHeader(first)), extra);
      if (compositions) {
        kind = kindOf(summary, format);
        describeRecords(summary, compositions);
      }
    }
    if (summary.atoms === 0) {
      problems.push({ code: 'no_atoms', message: noAtoms });
    }
    if (problems.length > 0) {
      return { ok: false, format, status: 422, code: 'invalid_structure', message: problems.map((p) => p.message).join(' '), report: report() };
    }
    return { ok: true, format, kind: kind ?? kindOf(summary, format), summary, report: report() };
  } catch (error) {
    const line = error instanceof ParseFailure ? error.line : undefined;
    const message = error instanceof ParseFailure ? error.message : `The ${label} reader failed: ${error instanceof Error ? error.message : String(error)}`;
    if (error instanceof ParseFailure && error.problems) {
      problems.push(...error.problems);
      const more = error.problems.length > 1 ? ` (and ${error.problems.length - 1} more problem${error.problems.length > 2 ? 's' : ''})` : '';
      const where = line !== undefined ? ` (line ${line})` : '';
      return { ok: false, format, status: 422, code: 'invalid_structure', message: `${message}${where}${more}`, report: report() };
    }
    problems.push({ code: 'parse_error', message: line !== undefined ? `${message} (line ${line})` : message, ...(line !== undefined ? { line } : {}) });
    return { ok: false, format, status: 422, code: 'invalid_structure', message: problems[problems.length - 1].message, report: report() };
  }
}

/**
 * Parses a stored file's bytes: PDB through the byte-level reader (pdbFast.ts) when it can read
 * the file, everything else (and the PDB files it leaves) through parseStructure.
 */
export async function parseStructureBytes(bytes: Uint8Array, format: Format, options: { split?: PdbSplit; cut?: PdbCut } = {}): Promise<ParseOutcome> {
  if (format === 'pdb') {
    // The checks of refusedBeforeReading, in its order: NUL bytes, then coordinates, which the
    // byte-level reader checks on every atom record as it reads them (it reads no file that fails).
    const nul = nulByteRefusal(bytes, format, FAST_PDB_PARSER);
    if (nul) return nul;
    const fast = options.cut ? await parsePdbFastCut(bytes, options.cut) : options.split ? await parsePdbFastSplit(bytes, options.split) : parsePdbFast(bytes);
    if (fast) return safeOutcome(fast, bytes);
  }
  const refused = refusedBeforeReading(bytes, format, format === 'pdb' ? FAST_PDB_PARSER : PARSER);
  if (refused) return refused;
  if (format === 'cif') {
    const fast = parseMmcifFast(bytes);
    if (fast) return safeOutcome(fast, bytes);
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return safeOutcome(await readStructure(text, format, {}), text);
}

/** Parser name in reports of files the byte-level PDB reader read. */
export const FAST_PDB_PARSER = 'molvault pdb reader (as molstar 5.11.0)';

/**
 * The same outcome as parseStructure(text, 'pdb') from the bytes, or undefined when the byte-level
 * reader leaves the file to the reference path (or fails, which the agreement test would show).
 * A file whose coordinates fail refusedBeforeReading's check is left too (undefined), so an
 * outcome here means every atom record passed that check.
 */
export function parsePdbFast(bytes: Uint8Array): ParseOutcome | undefined {
  const started = performance.now();
  const warnings: Problem[] = [];
  let atoms: PdbAtoms | undefined;
  try {
    atoms = readPdbAtoms(bytes);
    if (!atoms && lastDecline === NO_ATOMS) return noAtoms(started);
    atoms ??= rewrittenPdbAtoms(bytes, warnings);
  } catch {
    return undefined;
  }
  return pdbOutcome(bytes, atoms, warnings, started);
}

const NO_PDB_ATOMS = 'The PDB file contains no atoms (no ATOM or HETATM records).';

/** The reference's refusal of a PDB file without atom records (readStructure: no frame, no warning). */
function noAtoms(started: number): ParseOutcome {
  const problems: Problem[] = [{ code: 'no_atoms', message: NO_PDB_ATOMS }];
  const report = { problems, warnings: [], parser: FAST_PDB_PARSER, parseMs: Math.round(performance.now() - started) };
  return { ok: false, format: 'pdb', status: 422, code: 'invalid_structure', message: NO_PDB_ATOMS, report };
}

/** A large PDB file read with its scan in parts, the first here and the others where `scanner` runs them (readPdbAtomsSplit). */
export interface PdbSplit {
  scanner: ChunkScanner;
  parts: number;
  /** The smallest part worth a scan of its own. */
  minBytes: number;
}

/** parsePdbFast with the scan split (readPdbAtomsSplit): the same outcome. */
export async function parsePdbFastSplit(bytes: Uint8Array, split: PdbSplit): Promise<ParseOutcome | undefined> {
  let cuts: ChunkStart[];
  try {
    cuts = chunkStarts(bytes, split.parts, split.minBytes);
  } catch {
    return undefined;
  }
  return parsePdbFastCut(bytes, { scanner: split.scanner, cuts });
}

/**
 * A PDB file whose parts were (or are being) scanned elsewhere at cuts the caller chose: the parts
 * of a file scanned as its bytes arrived (pool/receipt.ts). `scanner` hands over each part's scan.
 */
export interface PdbCut {
  cuts: ChunkStart[];
  scanner: ChunkScanner;
}

/** parsePdbFast with the scan in parts at the given cuts (readPdbAtomsCut): the same outcome. */
export async function parsePdbFastCut(bytes: Uint8Array, cut: PdbCut): Promise<ParseOutcome | undefined> {
  const started = performance.now();
  const warnings: Problem[] = [];
  let atoms: PdbAtoms | undefined;
  try {
    atoms = await readPdbAtomsCut(bytes, cut.scanner, cut.cuts);
    if (!atoms && lastDecline === NO_ATOMS) return noAtoms(started);
    atoms ??= rewrittenPdbAtoms(bytes, warnings);
  } catch {
    return undefined;
  }
  return pdbOutcome(bytes, atoms, warnings, started);
}

/** After a decline for the MODEL rewrite: the same rewrites as readTrajectory, then the byte-level reader on their result. */
function rewrittenPdbAtoms(bytes: Uint8Array, warnings: Problem[]): PdbAtoms | undefined {
  if (lastDecline !== MODEL_REWRITE) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return readPdbAtoms(Buffer.from(normalisePdbModels(framesSeparatedByEnd(text, warnings), warnings), 'latin1'), 54, true);
}

/**
 * parseStructureBytes(the file's bytes, 'pdb') of an open file of `size` bytes, read through a
 * window (readPdbAtomsFromFile) rather than into memory of its own. Undefined when that reader
 * leaves the file to a read in one piece, or when the outcome is a refusal (some quote the file's
 * lines): the caller then parses the file's bytes, which gives the outcome either way. `read`: a
 * file still being written, read as its bytes come (readPdbAtomsFromFile).
 */
export function parsePdbFile(fd: number, size: number, windowBytes?: number, read?: WindowRead): ParseOutcome | undefined {
  const started = performance.now();
  try {
    const atoms = readPdbAtomsFromFile(fd, size, windowBytes, read);
    if (!atoms) return undefined;
    // Summarised now: the atoms' lines are read from the window or the file (pdbFast.ts LineSource).
    const outcome = pdbOutcome(undefined, atoms, [], started);
    if (!outcome?.ok) return undefined;
    // A sound outcome: safeOutcome reads the file's bytes only for the refusals it makes.
    const safe = safeOutcome(outcome, NO_BYTES);
    return safe.ok ? safe : undefined;
  } catch {
    return undefined;
  }
}

const NO_BYTES = new Uint8Array(0);

/** The outcome of the atoms read from `bytes` (undefined: from a file through a window, their header lines kept by the scan). */
function pdbOutcome(bytes: Uint8Array | undefined, atoms: PdbAtoms | undefined, warnings: Problem[], started: number): ParseOutcome | undefined {
  if (!atoms) return undefined;
  const problems: Problem[] = [];
  warnings.push(...atoms.warnings);
  const summary = summarizeAtoms(pdbAtomTable(atoms), problems, warnings, true);
  summary.models = atoms.models;
  const { idCode, depDate } = atoms.header;
  const fromMolstar: Partial<StructureSummary> = {};
  if (idCode && /^[0-9][A-Za-z0-9]{3}$/.test(idCode)) fromMolstar.pdbId = idCode.toUpperCase();
  if (depDate && depDate !== '?' && depDate !== '.') fromMolstar.depositionDate = depDate;
  Object.assign(summary, fromMolstar, atoms.bytes === bytes && atoms.head ? pdbHeaderFromLines(atoms.head) : pdbHeaderFromBytes(bytes ?? NO_BYTES));
  const report = () => ({ problems, warnings, parser: FAST_PDB_PARSER, parseMs: Math.round(performance.now() - started) });
  if (summary.atoms === 0) problems.push({ code: 'no_atoms', message: NO_PDB_ATOMS });
  if (problems.length > 0) {
    return { ok: false, format: 'pdb', status: 422, code: 'invalid_structure', message: problems.map((p) => p.message).join(' '), report: report() };
  }
  return { ok: true, format: 'pdb', kind: kindOf(summary, 'pdb'), summary, report: report() };
}

/** Parser name in reports of files the byte-level mmCIF reader read. */
export const FAST_CIF_PARSER = 'molvault mmcif reader (as molstar 5.11.0)';

/**
 * The same outcome as parseStructure(text, 'cif') from the bytes (cifFast.ts), or undefined when
 * the byte-level reader leaves the file to the reference path.
 */
export function parseMmcifFast(bytes: Uint8Array): ParseOutcome | undefined {
  const started = performance.now();
  const read = readMmcifFast(bytes);
  if (!read) return undefined;
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const summary = summarizeAtoms(read.table, problems, warnings, true);
  summary.models = read.models;
  Object.assign(summary, read.header);
  const report = () => ({ problems, warnings, parser: FAST_CIF_PARSER, parseMs: Math.round(performance.now() - started) });
  if (summary.atoms === 0) problems.push({ code: 'no_atoms', message: 'The mmCIF file contains no atoms.' });
  if (problems.length > 0) {
    return { ok: false, format: 'cif', status: 422, code: 'invalid_structure', message: problems.map((p) => p.message).join(' '), report: report() };
  }
  return { ok: true, format: 'cif', kind: kindOf(summary, 'cif'), summary, report: report() };
}

export type Read =
  | {
      trajectory: Trajectory;
      extra: Partial<StructureSummary>;
      molecules?: number;
      /** The composition of every record read, for a multi-record file's summary. */
      compositions?: RecordComposition[];
      /** Elements molvault read itself, in atom order, where Mol*'s would be wrong (core CIF without type symbols). */
      typeSymbols?: string[];
    }
  /** A large mmCIF summarised straight from its tokens (summarizeCif.ts). */
  | { direct: CifAtoms; frame: CifFrame; extra: Partial<StructureSummary> };

/**
 * From this size on, an mmCIF is summarised without building a Mol* model, when it can be. Every
 * size: the token summary agrees with the model's on the corpus's mmCIF, on mmCIF written by gemmi
 * and Open Babel, and with CRLF line ends (formats.corpus and formats.cifDirect tests), and the model
 * costs more than the tokenizer at every size.
 */
export const DIRECT_CIF_BYTES = 0;

/** Reads `text` as `format` into a Mol* trajectory (or, for a large mmCIF when `direct`, straight from its tokens). Throws on unreadable input. */
export async function readTrajectory(text: string, format: Format, warnings: Problem[], direct = false): Promise<Read> {
  const label = FORMAT_LABELS[format];
  switch (format) {
    case 'pdb': {
      const [{ parsePDB }, { trajectoryFromPDB }] = await Promise.all([molstar.pdb(), molstar.pdbModel()]);
      const pdb = unwrap(
        await parsePDB(withoutSeqresIfWideChains(normalisePdbModels(framesSeparatedByEnd(text, warnings), warnings), warnings)).run(),
        label,
        warnings,
      );
      return { trajectory: await trajectoryFromPDB(pdb).run(), extra: pdbHeader(text) };
    }
    case 'cif': {
      const { CIF } = await molstar.cif();
      const file = unwrap(await CIF.parse(text).run(), label, warnings);
      if (file.blocks.length === 0) throw new ParseFailure('The CIF file has no data block.');
      // The first block with coordinates decides the dialect: mmCIF, small-molecule (coreCIF) or a chemical component.
      for (const block of file.blocks) {
        const frame = block.categories.atom_site ? withEntitiesItDescribes(block, warnings) : block;
        if (frame.categories.atom_site) {
          const missingCoordinates = checkCifCoordinates(frame, warnings);
          const table = direct && missingCoordinates === 0 ? cifAtomTable(frame) : undefined;
          if (table) return { direct: table, frame, extra: cifResolution(frame) };
          const { trajectoryFromMmCIF } = await molstar.mmcifModel();
          return { trajectory: await trajectoryFromMmCIF(frame, file).run(), extra: cifResolution(frame) };
        }
        if (frame.categories.atom_site_fract_x || frame.categories.atom_site_Cartn_x) {
          const typeSymbols = coreCifElements(frame, warnings);
          const { trajectoryFromCifCore } = await molstar.cifCoreModel();
          return { trajectory: await trajectoryFromCifCore(frame).run(), extra: { dialect: 'coreCIF' }, ...(typeSymbols ? { typeSymbols } : {}) };
        }
        if (frame.categories.chem_comp_atom) {
          const { trajectoryFromCCD } = await molstar.mmcifModel();
          return { trajectory: await trajectoryFromCCD(frame).run(), extra: { dialect: 'chemical component' } };
        }
      }
      throw new ParseFailure(
        `The CIF file (block "${file.blocks[0].header}") holds no atom coordinates: it has no _atom_site (mmCIF or small-molecule CIF) and no _chem_comp_atom category.`,
      );
    }
    case 'bcif': {
      const bytes = Buffer.from(text, 'latin1');
      const [{ CIF }, { trajectoryFromMmCIF }] = await Promise.all([molstar.cif(), molstar.mmcifModel()]);
      const file = unwrap(await CIF.parseBinary(new Uint8Array(bytes)).run(), label, warnings);
      const frame = file.blocks[0];
      if (!frame) throw new ParseFailure('The BinaryCIF file has no data block.');
      return { trajectory: await trajectoryFromMmCIF(frame, file).run(), extra: cifResolution(frame) };
    }
    case 'sdf':
    case 'mol': {
      // One reader for both: a MOL file is a one-record SDF, and Mol*'s MOL reader has no V3000.
      const scan = scanSdf(text);
      const { first, count, sound } = soundRecords(scan, format, warnings);
      const [{ parseSdf }, { trajectoryFromSdf }] = await Promise.all([molstar.sdf(), molstar.sdfModel()]);
      // Every sound record is read (the summary describes the whole file); the model is the first's.
      const sdf = unwrap(await parseSdf(sound.map((r) => recordText(scan, r, '\n$$$$\n')).join('')).run(), label, warnings);
      if (sdf.compounds.length === 0) throw new ParseFailure(`Record ${first.index} of the ${label} file could not be read.`, first.startLine + 1);
      // Mol*'s SDF reader can stop early on a file it reads in one go: then each record is read alone.
      let compounds = sdf.compounds;
      if (compounds.length !== sound.length) {
        compounds = [];
        for (const record of sound) {
          const one = await parseSdf(recordText(scan, record, '\n$$$$\n')).run();
          if (one.isError || one.result.compounds.length !== 1) break;
          compounds.push(one.result.compounds[0]);
        }
      }
      const compositions =
        compounds.length === sound.length
          ? sdfCompositions(
              compounds.map((c) => c.molFile),
              sound.map((r) => r.index),
              sound.map((r) => r.bonds),
            )
          : undefined;
      return { trajectory: await trajectoryFromSdf(sdf.compounds[0]).run(), extra: recordExtra(first), molecules: count, compositions };
    }
    case 'mol2': {
      const scan = scanMol2(text);
      const { first, count, sound } = soundRecords(scan, format, warnings);
      const [{ parseMol2 }, { trajectoryFromMol2 }] = await Promise.all([molstar.mol2(), molstar.mol2Model()]);
      const mol2 = unwrap(await parseMol2(recordText(scan, first, '\n'), 'upload').run(), label, warnings);
      if (mol2.structures.length === 0) throw new ParseFailure(`Molecule ${first.index} of the MOL2 file could not be read.`, first.startLine + 1);
      // Every sound molecule is read for the summary, one at a time: Mol*'s reader looks for a
      // SUBSTRUCTURE section past the end of a molecule that has none, into the next one.
      const structures = [mol2.structures[0]];
      for (const record of sound.slice(1)) {
        const result = await parseMol2(recordText(scan, record, '\n'), 'upload').run();
        if (result.isError || result.result.structures.length === 0) break;
        structures.push(result.result.structures[0]);
      }
      const compositions =
        structures.length === sound.length
          ? mol2Compositions(
              { ...mol2, structures },
              sound.map((r) => r.index),
              sound.map((r) => r.bonds),
            )
          : undefined;
      return { trajectory: await trajectoryFromMol2(mol2).run(), extra: recordExtra(first), molecules: count, compositions };
    }
    case 'xyz': {
      const scan = scanXyz(text);
      const { first, sound } = soundRecords(scan, format, warnings);
      const [{ parseXyz }, { trajectoryFromXyz }] = await Promise.all([molstar.xyz(), molstar.xyzModel()]);
      // Frames are one trajectory: read the sound ones (all of them, unless the file breaks off).
      const last = sound.at(-1) ?? first;
      const frames = last.index === scan.records.length && scan.fileProblems.length === 0 ? text : scan.lines.slice(0, last.endLine).join('\n');
      const xyz = unwrap(await parseXyz(frames).run(), label, warnings);
      const extended = /Properties=/i.test(scan.lines[first.startLine + 1] ?? '');
      const title = !extended && first.title && first.title.length <= 200 ? { title: first.title } : {};
      const read = scan.records.slice(0, last.index);
      const compositions =
        xyz.molecules.length === read.length
          ? xyzCompositions(
              xyz,
              read.map((r) => r.index),
            )
          : undefined;
      return { trajectory: await trajectoryFromXyz(xyz).run(), extra: title, compositions };
    }
    default:
      throw new ParseFailure(`molvault has no reader for ${label}.`);
  }
}

function kindOf(summary: StructureSummary, format: Format): 'macromolecule' | 'small-molecule' | 'other' {
  if (format === 'sdf' || format === 'mol' || format === 'mol2') return summary.residues > 20 ? 'macromolecule' : 'small-molecule';
  if (summary.residues >= 20 || summary.atoms >= 500) return 'macromolecule';
  return 'small-molecule';
}

/** One value of an mmCIF category's first row, undefined when absent, '?' or '.'. */
type HeaderValue = (category: string, field: string) => string | undefined;

/** Header values from the (mmCIF-shaped) source data Mol* keeps for every format. */
function modelHeader(model: Model): HeaderValue {
  const data = model.sourceData.data as { db?: Record<string, { _rowCount?: number; [k: string]: unknown }> };
  const db = data.db;
  return (category, field) => {
    const table = db?.[category] as { _rowCount: number; [k: string]: unknown } | undefined;
    if (!table || !table._rowCount) return undefined;
    const column = table[field] as { isDefined?: boolean; value(i: number): unknown } | undefined;
    if (!column || column.isDefined === false) return undefined;
    const value = String(column.value(0) ?? '').trim();
    return value && value !== '?' && value !== '.' ? value : undefined;
  };
}

/** Header values straight from a CIF block. */
function frameHeader(frame: CifFrame): HeaderValue {
  return (category, field) => {
    const column = frame.categories[category]?.getField(field);
    if (!column || column.rowCount === 0 || column.valueKind(0) !== 0) return undefined;
    const value = column.str(0).trim();
    return value && value !== '?' && value !== '.' ? value : undefined;
  };
}

/** Title, method, id and deposition date. */
function headerInfo(text: HeaderValue): Partial<StructureSummary> {
  const info: Partial<StructureSummary> = {};
  const title = text('struct', 'title');
  if (title) info.title = title;
  const method = text('exptl', 'method');
  if (method) info.method = method.toUpperCase();
  const id = text('entry', 'id');
  if (id && /^[0-9][A-Za-z0-9]{3}$/.test(id)) info.pdbId = id.toUpperCase();
  const date = text('pdbx_database_status', 'recvd_initial_deposition_date');
  if (date) info.depositionDate = date;
  return info;
}

/**
 * Mol* reads a '?' or '.' coordinate as 0, which would put the atom at the origin. Atoms without
 * coordinates are counted: all of them → refused, some → a warning with the first row's line.
 */
function checkCifCoordinates(frame: CifFrame, warnings: Problem[]): number {
  const sites = frame.categories.atom_site;
  // CIF names are case-insensitive; some writers spell them cartn_x.
  const columns = ['cartn_x', 'cartn_y', 'cartn_z'].map((name) => sites.getField(sites.fieldNames.find((n) => n.toLowerCase() === name) ?? name));
  if (columns.some((c) => c === undefined)) {
    throw new ParseFailure('The _atom_site category has no Cartn_x, Cartn_y and Cartn_z columns: the file holds no atom coordinates.');
  }
  let missing = 0;
  let firstRow = -1;
  for (let row = 0; row < sites.rowCount; row++) {
    for (const column of columns) {
      if (column?.valueKind(row) !== 0 /* Column.ValueKinds.Present */) {
        missing++;
        if (firstRow < 0) firstRow = row;
        break;
      }
      // Mol*'s reader takes "nan", "inf" or "abc" as 0; only a written zero may be 0 (safeText.ts).
      if (column.float(row) === 0 && !isNumberToken(column.str(row))) {
        throw new ParseFailure(
          `_atom_site row ${row + 1} gives a coordinate that is not a number ("${escapeControlCharacters(column.str(row))}"): the atom has no position.`,
        );
      }
    }
  }
  if (missing === 0) return 0;
  if (missing === sites.rowCount) {
    throw new ParseFailure(`None of the ${missing} _atom_site rows has coordinates ('?' or '.' in Cartn_x/y/z): the file holds no atom coordinates.`);
  }
  warnings.push({
    code: 'missing_coordinates',
    message: `${missing} _atom_site row(s) have no coordinates ('?' or '.'), starting with row ${firstRow + 1}; they are read at the origin.`,
  });
  return missing;
}

/**
 * An mmCIF whose `_atom_site.label_entity_id` names entities its `_entity` does not describe (gemmi
 * writes '.' there for atoms it could not assign, e.g. from a CHARMM/NAMD-style PDB without chain
 * ids): Mol* refuses such a file ("Missing entity entry"). Without the `_entity` category Mol*
 * infers the entities from the atoms, as it does for files that have none; the report says so.
 */
function withEntitiesItDescribes(frame: CifFrame, warnings: Problem[]): CifFrame {
  const entity = frame.categories.entity;
  const sites = frame.categories.atom_site;
  const column = sites.getField('label_entity_id');
  if (!entity || !column) return frame;
  const ids = entity.getField('id');
  const described = new Set<string>();
  for (let row = 0; row < (ids?.rowCount ?? 0); row++) described.add(ids?.str(row) ?? '');
  let undescribed = 0;
  for (let row = 0; row < sites.rowCount; row++) {
    if (column.valueKind(row) !== 0 /* Column.ValueKinds.Present */ || !described.has(column.str(row))) undescribed++;
  }
  if (undescribed === 0) return frame;
  warnings.push({
    code: 'entities_inferred',
    message: `${undescribed} _atom_site row(s) name no entity the _entity category describes; entities were inferred from the atoms instead.`,
  });
  const { entity: _dropped, ...categories } = frame.categories;
  return { ...frame, categories, categoryNames: frame.categoryNames.filter((name) => name !== 'entity') };
}

function cifResolution(frame: CifFrame): Partial<StructureSummary> {
  const candidates: [string, string][] = [
    ['refine', 'ls_d_res_high'],
    ['reflns', 'd_resolution_high'],
    ['em_3d_reconstruction', 'resolution'],
  ];
  for (const [category, field] of candidates) {
    const value = frame.categories[category]?.getField(field)?.float(0);
    if (value !== undefined && Number.isFinite(value) && value > 0) return { resolution: value };
  }
  return {};
}

const RESOLUTION = /^REMARK {3}2 RESOLUTION\.\s+([0-9.]+)\s+ANGSTROM/;

/**
 * pdbHeader of the file's first 200,000 bytes, decoding only the lines its patterns can match:
 * those starting with HEADER, TITLE, EXPDTA or REMARK   2 RESOLUTION. (each pattern but the
 * resolution's stays within a line). The resolution's may run on over whitespace into the next
 * lines: when the first such line does not match on its own, the whole head is decoded as before.
 */
function pdbHeaderFromBytes(bytes: Uint8Array): Partial<StructureSummary> {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, HEADER_BYTES));
  const end = buffer.length;
  const lines: string[] = [];
  let remarkSeen = false;
  for (let s = 0; s < end; ) {
    let nl = buffer.indexOf(10, s);
    if (nl < 0) nl = end;
    const c = buffer[s];
    // The record name compared as bytes: decoding the start of every HETATM and REMARK line to compare it cost more than the rest.
    if (c === 72 || c === 84 || c === 69 || c === 82) {
      if (bytesAre(buffer, s, nl, 'HEADER') || bytesAre(buffer, s, nl, 'TITLE ') || bytesAre(buffer, s, nl, 'EXPDTA'))
        lines.push(buffer.toString('latin1', s, nl));
      else if (bytesAre(buffer, s, nl, 'REMARK   2 RESOLUTION.')) {
        const line = buffer.toString('latin1', s, nl);
        if (!remarkSeen && !RESOLUTION.test(line)) return pdbHeader(buffer.toString('latin1'));
        remarkSeen = true;
        lines.push(line);
      }
    }
    s = nl + 1;
  }
  return pdbHeader(lines.join('\n'));
}

/**
 * pdbHeaderFromBytes from what the byte-level scan kept of the same bytes (PdbAtoms.head): the
 * HEADER, TITLE and EXPDTA lines (each of pdbHeader's patterns but the resolution's matches within
 * a line) and the resolution pdbHeader's pattern captures over the head (pdbScan.ts resolutionAt).
 */
function pdbHeaderFromLines(head: { lines: string[]; resolution: string | undefined }): Partial<StructureSummary> {
  return pdbHeader(head.lines.join('\n'), head.resolution ?? null);
}

/** Whether the line [s, end) starts with `word` (latin1). */
function bytesAre(b: Uint8Array, s: number, end: number, word: string): boolean {
  if (end - s < word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[s + k] !== word.charCodeAt(k)) return false;
  return true;
}

/**
 * What Mol*'s PDB reader does not carry over: resolution (REMARK 2), id and date (HEADER), method
 * (EXPDTA). `resolution`, when given, is what the resolution pattern captured (null: nothing).
 */
function pdbHeader(text: string, resolution?: string | null): Partial<StructureSummary> {
  const info: Partial<StructureSummary> = {};
  const head = text.length > HEADER_BYTES ? text.slice(0, HEADER_BYTES) : text;
  const header = /^HEADER.{44}(\d{2}-[A-Z]{3}-\d{2}).{3}([0-9][A-Z0-9]{3})/m.exec(head);
  if (header) {
    info.depositionDate = header[1];
    info.pdbId = header[2];
  }
  const resolved = resolution === undefined ? /^REMARK {3}2 RESOLUTION\.\s+([0-9.]+)\s+ANGSTROM/m.exec(head)?.[1] : resolution;
  if (resolved) info.resolution = Number(resolved);
  const expdta = head.match(/^EXPDTA {4}(.*)$/gm);
  if (expdta)
    info.method = expdta
      .map((l) => l.slice(10).trim())
      .join(' ')
      .replace(/\s+/g, ' ')
      .toUpperCase();
  const title = head.match(/^TITLE .*$/gm);
  if (title)
    info.title = title
      .map((l) => l.slice(10).trim())
      .join(' ')
      .replace(/\s+/g, ' ');
  return info;
}

/**
 * MD tools write trajectories as frames separated by END records, without MODEL lines. Mol*
 * would merge them into one model; they are read as one model per frame, and the report says so.
 */
export function framesSeparatedByEnd(text: string, warnings: Problem[]): string {
  if (/^MODEL/m.test(text) || !/^END\s*\r?\n[\s\S]*^(ATOM {2}|HETATM)/m.test(text)) return text;
  const lines = text.split('\n');
  const out: string[] = [];
  let frame = 0;
  let open = false;
  for (const line of lines) {
    const isAtom = line.startsWith('ATOM  ') || line.startsWith('HETATM');
    if (isAtom && !open) {
      frame++;
      open = true;
      out.push(`MODEL     ${String(frame).padStart(4)}`);
    } else if (/^END\s*$/.test(line) && open) {
      out.push('ENDMDL');
      open = false;
      continue;
    }
    out.push(line);
  }
  if (open) out.push('ENDMDL');
  warnings.push({
    code: 'frames_separated_by_end',
    message: `The file holds ${frame} frames separated by END records (no MODEL records); each frame was read as a model.`,
  });
  return out.join('\n');
}

/**
 * Mol* starts a model only at "MODEL " and ignores ENDMDL, so a bare "MODEL" line or atoms after
 * ENDMDL without a new MODEL would merge into one model. Give such files explicit MODEL lines, as
 * gemmi reads them, so the first model holds exactly the records before the first ENDMDL.
 */
export function normalisePdbModels(text: string, warnings: Problem[]): string {
  if (!text.includes('ENDMDL') && !/^MODEL\s*$/m.test(text)) return text;
  const lines = text.split('\n');
  let inModel = false;
  let model = 0;
  let changed = false;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('MODEL')) {
      model++;
      inModel = true;
      if (!/^MODEL {5}\s*\d+/.test(line)) {
        out.push(`MODEL     ${String(model).padStart(4)}`);
        warnings.push({ code: 'model_without_number', message: `A MODEL record has no model number; it was read as model ${model}.`, line: i + 1 });
        changed = true;
        continue;
      }
    } else if (line.startsWith('ENDMDL')) {
      inModel = false;
    } else if (!inModel && model > 0 && (line.startsWith('ATOM  ') || line.startsWith('HETATM'))) {
      model++;
      inModel = true;
      out.push(`MODEL     ${String(model).padStart(4)}`);
      warnings.push({
        code: 'atoms_outside_model',
        message: `Atom records follow ENDMDL without a MODEL record; they were read as model ${model}.`,
        line: i + 1,
      });
      changed = true;
    }
    out.push(line);
  }
  return changed ? out.join('\n') : text;
}

/**
 * Some writers (gemmi for big assemblies) put 2-character chain ids in columns 21-22. Mol* reads
 * column 22 only, so chains merge, and aligning SEQRES to the merged chains grows quadratically
 * (minutes for a large assembly). Such files are read without SEQRES, and the user is told.
 */
export function withoutSeqresIfWideChains(text: string, warnings: Problem[]): string {
  let wide = false;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if ((text.startsWith('ATOM  ', start) || text.startsWith('HETATM', start)) && end - start > 21 && text[start + 20] !== ' ') {
      wide = true;
      break;
    }
    start = end + 1;
  }
  if (!wide) return text;
  warnings.push({
    code: 'wide_chain_ids',
    message:
      'Atom records use 2-character chain ids (columns 21-22), which the PDB format does not define; chains were read from column 22 only, so chain and residue counts are low. mmCIF keeps such ids intact.',
  });
  if (!/^SEQRES/m.test(text)) return text;
  return text.replace(/^SEQRES.*(\r?\n|$)/gm, '');
}
