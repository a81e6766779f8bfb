/**
 * CPU work that must never run on a worker's event loop: unwrapping, hashing and parsing.
 * Runs inside piscina threads; inputs and outputs are plain data (paths, numbers, strings).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { MessagePort } from 'node:worker_threads';
import { createGunzip, gunzipSync } from 'node:zlib';
import { type DiffOptions, diffStructures, type StructuralDiff } from '../formats/diff.js';
import { parsePdbFile, parseStructureBytes } from '../formats/parse.js';
import { ArrivingPdb } from '../formats/pdbArriving.js';
import { inspectSessionFile } from '../formats/session.js';
import { sniffCompression, sniffFormat } from '../formats/sniff.js';
import type { Compression, Format, ParseOutcome } from '../formats/types.js';
import { RECEIPT_COMPLETE, RECEIPT_DROPPED } from './receiptProgress.js';
import { pdbSplit, readShared, splitsPdb } from './scanHelpers.js';

export { splitPdbFrom } from './scanHelpers.js';

export interface IngestTask {
  stagingFile: string;
  tempFile: string;
  maxExpandedBytes: number;
  maxExpansionRatio: number;
  /** sha256 the API computed while receiving; the staged bytes must still match it. */
  expectedRawSha256?: string;
  /**
   * Also parse the content as the format it was detected as, while it is in memory (files under
   * SMALL_FILE_BYTES): a bulk import then reads each file once and hands each to a thread once.
   * The caller uses the outcome only if it settles on that same format.
   */
  parse?: boolean;
}

export type IngestResult =
  | {
      ok: true;
      sha256: string;
      size: number;
      compressedSize: number;
      compression?: Compression;
      detected?: Format;
      sniffReason?: string;
      parsed?: { format: Format; outcome: ParseOutcome };
    }
  | { ok: false; status: number; code: string; message: string };

const HEAD_BYTES = 64 * 1024;
const RATIO_FLOOR_BYTES = 64 * 1024 * 1024;
/** Below this, a file is handled in one piece: streams cost more than they save. */
const SMALL_FILE_BYTES = 4 * 1024 * 1024;

type Refused = Extract<IngestResult, { ok: false }>;

/** The answers both ingest paths give when a file cannot be stored. */
const refuse = {
  stagingCorrupted: (): Refused => ({
    ok: false,
    status: 500,
    code: 'staging_corrupted',
    message: 'The stored copy of the upload no longer matches what was received; please upload the file again.',
  }),
  tooLarge: (compression: Compression | undefined, limit: number): Refused => ({
    ok: false,
    status: 413,
    code: 'decompressed_too_large',
    message: `The ${compression} file expands to more than ${limit} bytes, past the limit molvault accepts (it may be a decompression bomb).`,
  }),
  corrupt: (compression: Compression, reason: string): Refused => ({
    ok: false,
    status: 422,
    code: 'corrupt_compression',
    message: `The ${compression} data is truncated or corrupt and cannot be unpacked (${reason}).`,
  }),
  empty: (compression: Compression | undefined): Refused => ({
    ok: false,
    status: 422,
    code: 'empty_file',
    message: compression ? `The ${compression} file unpacks to nothing.` : 'The file is empty.',
  }),
};

/** A refusal raised inside a stream, carried out of the pipeline. */
class Refusal extends Error {
  constructor(readonly result: Refused) {
    super(result.message);
  }
}

/** The content is stored in the temp file: say what it is. */
function accepted(head: Buffer, sha256: string, size: number, compressedSize: number, compression: Compression | undefined): IngestResult {
  const sniff = sniffFormat(head);
  return { ok: true, sha256, size, compressedSize, compression, detected: sniff.format, sniffReason: sniff.format ? undefined : sniff.reason };
}

/** Unwraps gzip/bzip2, hashes the uncompressed bytes and writes them to `tempFile` (fsynced). */
export async function ingest(task: IngestTask): Promise<IngestResult> {
  // Synchronous calls: this thread has nothing else to do meanwhile, and libuv's few threads, which
  // promise-based calls wait for, are busy with the process's fsyncs during an import.
  const { size: compressedSize } = statSync(task.stagingFile);
  // The blob store makes its temp directory once per process; made again here (cheaply) in case
  // something removed it since.
  mkdirSync(path.dirname(task.tempFile), { recursive: true });
  const magic = Buffer.alloc(4);
  const fd = openSync(task.stagingFile, 'r');
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  const compression = sniffCompression(magic);
  const limit = compression ? Math.min(task.maxExpandedBytes, Math.max(RATIO_FLOOR_BYTES, compressedSize * task.maxExpansionRatio)) : Number.POSITIVE_INFINITY;
  if (compressedSize <= SMALL_FILE_BYTES && compression !== 'bzip2') {
    const { result, content } = ingestSmall(task, compression, compressedSize, limit);
    // A session is read by its header from the stored file, as validation does; a failed parse is left to validation.
    if (task.parse && result.ok && content && result.detected && result.detected !== 'cxs') {
      const outcome = await parseStructureBytes(content, result.detected).catch(() => undefined);
      if (outcome) result.parsed = { format: result.detected, outcome };
    }
    return result;
  }
  if (!compression) {
    const plain = await ingestPlain(task, compressedSize);
    if (plain) return plain;
  }
  const hash = createHash('sha256');
  let size = 0;
  const head: Buffer[] = [];
  let headBytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      size += chunk.length;
      if (size > limit) {
        callback(new Refusal(refuse.tooLarge(compression, limit)));
        return;
      }
      hash.update(chunk);
      if (headBytes < HEAD_BYTES) {
        head.push(chunk.subarray(0, HEAD_BYTES - headBytes));
        headBytes += Math.min(chunk.length, HEAD_BYTES - headBytes);
      }
      callback(null, chunk);
    },
  });
  // fsynced on its own descriptor before that is closed (`flush`), rather than opened again for it.
  const out = createWriteStream(task.tempFile, { flags: 'w', flush: true });
  const rawHash = createHash('sha256');
  try {
    const source = createReadStream(task.stagingFile);
    source.on('data', (chunk) => rawHash.update(chunk));
    if (compression === 'gzip') {
      await pipeline(source, createGunzip(), meter, out);
    } else if (compression === 'bzip2') {
      const bz = bunzip(source);
      await pipeline(bz.stream, meter, out);
      await bz.exited; // a truncated stream may end its output cleanly: only the exit code says so
    } else {
      await pipeline(source, meter, out);
    }
  } catch (error) {
    await fs.rm(task.tempFile, { force: true });
    if (error instanceof Refusal) return error.result;
    if (compression) return refuse.corrupt(compression, error instanceof Error ? error.message : String(error));
    throw error;
  }
  if (task.expectedRawSha256 && rawHash.digest('hex') !== task.expectedRawSha256) {
    await fs.rm(task.tempFile, { force: true });
    return refuse.stagingCorrupted();
  }
  if (size === 0) {
    await fs.rm(task.tempFile, { force: true });
    return refuse.empty(compression);
  }
  return accepted(Buffer.concat(head), hash.digest('hex'), size, compressedSize, compression);
}

/**
 * A large uncompressed file: the staged bytes are the content, so one pass hashes them (the
 * receipt's check and the content's sha256 are the same digest) and the temp file is a second name
 * for the staged file (a hard link), as for small files, instead of a copy written and fsynced.
 * Undefined when no link can be made (another filesystem): the caller copies.
 */
async function ingestPlain(task: IngestTask, compressedSize: number): Promise<IngestResult | undefined> {
  const hash = createHash('sha256');
  let size = 0;
  const head: Buffer[] = [];
  let headBytes = 0;
  // Read synchronously into one buffer used over and over (as the rest of this task reads): a
  // stream allocates a buffer per chunk and waits a libuv round trip for each.
  const buffer = Buffer.allocUnsafe(PLAIN_READ_BYTES);
  const fd = openSync(task.stagingFile, 'r');
  try {
    for (let read = readSync(fd, buffer, 0, buffer.length, null); read > 0; read = readSync(fd, buffer, 0, buffer.length, null)) {
      const chunk = buffer.subarray(0, read);
      hash.update(chunk);
      size += read;
      if (headBytes < HEAD_BYTES) {
        // Copied: the buffer is read into again.
        head.push(Buffer.from(chunk.subarray(0, HEAD_BYTES - headBytes)));
        headBytes += Math.min(read, HEAD_BYTES - headBytes);
      }
    }
  } finally {
    closeSync(fd);
  }
  const sha256 = hash.digest('hex');
  if (task.expectedRawSha256 && sha256 !== task.expectedRawSha256) return refuse.stagingCorrupted();
  if (size === 0) return refuse.empty(undefined);
  try {
    // Durable as for small files: the staged bytes were fsynced on receipt, the new name is with the blob's directory.
    await fs.link(task.stagingFile, task.tempFile);
  } catch {
    return undefined;
  }
  return accepted(Buffer.concat(head), sha256, size, compressedSize, undefined);
}

/** What ingestPlain reads at a time. */
const PLAIN_READ_BYTES = 4 * 1024 * 1024;

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The same as the streaming path, in memory, with synchronous I/O (this is a worker thread, not an event loop). */
function ingestSmall(
  task: IngestTask,
  compression: Compression | undefined,
  compressedSize: number,
  limit: number,
): { result: IngestResult; content?: Buffer } {
  const refused = (result: Refused) => ({ result });
  const raw = readFileSync(task.stagingFile);
  const rawSha256 = task.expectedRawSha256 || !compression ? sha256Hex(raw) : undefined;
  if (task.expectedRawSha256 && rawSha256 !== task.expectedRawSha256) return refused(refuse.stagingCorrupted());
  let content: Buffer = raw;
  if (compression === 'gzip') {
    try {
      content = gunzipSync(raw, { maxOutputLength: limit });
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return refused(refuse.tooLarge(compression, limit));
      return refused(refuse.corrupt(compression, (error as Error).message));
    }
  }
  if (content.length === 0) return refused(refuse.empty(compression));
  // Uncompressed, the staged file already is the content: a second name for it (a hard link) spares
  // a copy, and its bytes are on disk already (staging is fsynced on receipt, before the 202). The
  // new name is made durable with the blob's directory when the blob is committed; an fsync here
  // would only force a journal commit of the link count, one per file, while this thread waits.
  let linked = false;
  if (!compression) {
    try {
      linkSync(task.stagingFile, task.tempFile);
      linked = true;
    } catch {
      // Another filesystem, or links not allowed: copy instead.
    }
  }
  if (!linked) {
    const fd = openSync(task.tempFile, 'w');
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  // Uncompressed, the content is the staged bytes: their digest is already known.
  const sha256 = content === raw && rawSha256 ? rawSha256 : sha256Hex(content);
  return { result: accepted(content.subarray(0, HEAD_BYTES), sha256, content.length, compressedSize, compression), content };
}

/** bzip2 through the system `bzip2` tool: Node has no bzip2 codec and the npm ones are unmaintained. */
function bunzip(source: Readable): { stream: Readable; exited: Promise<void> } {
  const child = spawn('bzip2', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (error) => {
      const failure = new Error(`bzip2 is not available on this server (${error.message})`);
      child.stdout.destroy(failure);
      reject(failure);
    });
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const failure = new Error(stderr.trim() || `bzip2 exited with code ${code}`);
      child.stdout.destroy(failure);
      reject(failure);
    });
  });
  exited.catch(() => {}); // handled by whoever awaits it; the pipeline may fail first
  source.pipe(child.stdin);
  child.stdin.on('error', () => {});
  return { stream: child.stdout, exited };
}

export interface ParseTask {
  path: string;
  format: Format;
}

/** Files up to this size are read by the parse task in one synchronous call. */
const SYNC_READ_MAX_BYTES = 16 * 1024 * 1024;

/** Parses and checks one stored file. */
export async function parse(task: ParseTask): Promise<ParseOutcome> {
  // A session is checked by its header: read its first bytes, not the whole (possibly huge) file.
  if (task.format === 'cxs') return inspectSessionFile(task.path);
  // PDB is read from the bytes; the other readers get latin1 text (every byte kept, BinaryCIF too).
  // A large PDB file is read into shared memory, so a helper thread can scan part of it.
  // Synchronous stat and read: this runs in a pool thread that has nothing else to do meanwhile, and
  // the promise-based calls cost a few thread-pool round trips per file (as much CPU as parsing a
  // small one). A large file is read the promise way: while it fills its buffer, the previous large
  // file's buffer can be collected; read in one call, both would be resident at once.
  // One open, fstat and read for a small file (a stat by path first, then readFileSync's own open and
  // fstat, cost as much again as the read of a small file).
  const fd = openSync(task.path, 'r');
  let small: Buffer | undefined;
  let split: boolean;
  try {
    const size = fstatSync(fd).size;
    split = task.format === 'pdb' && splitsPdb(size);
    // A PDB file is read through a window used over and over (parsePdbFile), not into memory of its
    // own; the few it leaves are read whole below.
    if (task.format === 'pdb' && !split && size > 0) {
      const outcome = parsePdbFile(fd, size);
      if (outcome) return outcome;
    }
    if (size < SYNC_READ_MAX_BYTES && !split) small = readOpenFile(fd, size);
  } finally {
    closeSync(fd);
  }
  if (small) return parseStructureBytes(small, task.format);
  if (split) {
    const bytes = await readShared(task.path);
    return parseStructureBytes(bytes, task.format, { split: pdbSplit(bytes) });
  }
  return parseStructureBytes(await fs.readFile(task.path), task.format);
}

/**
 * The whole of an open file whose fstat gave `size`, as readFileSync reads it: up to `size` bytes
 * (fewer when it ends sooner), or to its end when its size is unknown (0: not a regular file).
 */
function readOpenFile(fd: number, size: number): Buffer {
  if (size === 0) return readFileSync(fd);
  const buffer = Buffer.allocUnsafe(size);
  let at = 0;
  for (let read = -1; read !== 0 && at < size; at += read) read = readSync(fd, buffer, at, size - at, null);
  return at < size ? buffer.subarray(0, at) : buffer;
}

/**
 * An upload parsed while it arrives (CpuPool.receive): its bytes are copied into `bytes` as they
 * come, `arrived` (one 32-bit integer) says how many are in, and `port` says when more came, when
 * the last did ({ end: size }) or that the upload was dropped ({ abort: true }).
 */
export interface ReceiveTask {
  bytes: SharedArrayBuffer;
  arrived: SharedArrayBuffer;
  port: MessagePort;
  format: Format;
}

/**
 * A PDB upload parsed while it arrives, read from the file it is staged to (CpuPool.receiveFile)
 * rather than copied: `file`, which holds at most `maxBytes`; `progress` (RECEIPT_SLOTS 32-bit
 * integers) says how many bytes were received and whether they are still arriving (0), the last
 * one was (RECEIPT_COMPLETE, the count then the file's size) or the upload was dropped (RECEIPT_DROPPED).
 */
export interface ReceiveFileTask {
  file: string;
  maxBytes: number;
  progress: SharedArrayBuffer;
}

/** How long a read waits before it looks again for bytes received but not yet in the file (written by the API's file stream). */
const WRITTEN_POLL_MS = 1;
/** How long a read waits for the next bytes before it looks again (they are announced: this only bounds a missed wake-up). */
const ARRIVING_POLL_MS = 100;

/** The upload was dropped while its file was read. */
class ReceiptDropped extends Error {}

/**
 * Parses a PDB upload from its staged file as the API writes it: the window reader
 * (parsePdbFile) reads each window once its bytes are in the file, so that once the last byte is
 * in only the last window and the phases after the scan are left. The thread waits between
 * windows (Atomics.wait): nothing else runs on it meanwhile. Undefined when dropped, or when the
 * window reader leaves the file to the validate stage (which parses it whole).
 */
export function receiveFile(task: ReceiveFileTask): ParseOutcome | undefined {
  const progress = new Int32Array(task.progress);
  const state = () => Atomics.load(progress, 1);
  let fd: number | undefined;
  try {
    // The file is made by the API's stream as its first bytes are written.
    while (fd === undefined) {
      if (state() === RECEIPT_DROPPED) return undefined;
      try {
        fd = openSync(task.file, 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
        Atomics.wait(progress, 0, Atomics.load(progress, 0), WRITTEN_POLL_MS);
      }
    }
    const open = fd;
    const read = (buffer: Buffer, offset: number, length: number, position: number): number => {
      for (;;) {
        const got = length > 0 ? readSync(open, buffer, offset, length, position) : 0;
        if (got > 0 || length === 0) return got;
        // Read the state before the count: a complete receipt's count is its size.
        const now = state();
        const received = Atomics.load(progress, 0);
        if (now === RECEIPT_DROPPED) throw new ReceiptDropped();
        if (now === RECEIPT_COMPLETE && position >= received) return 0;
        // Received but not yet written: look again shortly. Not yet received: wait to be told.
        Atomics.wait(progress, 0, received, position < received ? WRITTEN_POLL_MS : ARRIVING_POLL_MS);
      }
    };
    return parsePdbFile(open, task.maxBytes, undefined, read);
  } catch (error) {
    if (error instanceof ReceiptDropped) return undefined;
    throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Parses an upload as its bytes arrive: a PDB file's parts are scanned as each is complete
 * (formats/pdbArriving.ts), so that once the last byte is in only the rest of the parse is left;
 * other formats are parsed once the file is complete, from memory. Undefined when dropped.
 */
export async function receive(task: ReceiveTask): Promise<ParseOutcome | undefined> {
  const all = Buffer.from(task.bytes);
  const arrived = new Int32Array(task.arrived);
  const parts = task.format === 'pdb' ? new ArrivingPdb(all) : undefined;
  const size = await new Promise<number | undefined>((resolve) => {
    task.port.on('message', (message: { end?: number; abort?: true }) => {
      if (message.abort) resolve(undefined);
      else if (message.end !== undefined) resolve(message.end);
      else parts?.advance(Atomics.load(arrived, 0));
    });
  });
  task.port.close();
  if (size === undefined) return undefined;
  const bytes = all.subarray(0, size);
  return parseStructureBytes(bytes, task.format, parts ? { cut: parts.finish(size) } : {});
}

export interface DiffTask {
  from: { path: string; format: Format };
  to: { path: string; format: Format };
  options: DiffOptions;
}

/** Reads two stored files and compares them as structures (formats may differ). */
export async function diff(task: DiffTask): Promise<StructuralDiff> {
  const from = await fs.readFile(task.from.path);
  const to = await fs.readFile(task.to.path);
  return diffStructures({ bytes: from, format: task.from.format }, { bytes: to, format: task.to.format }, task.options);
}
