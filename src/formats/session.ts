/**
 * ChimeraX sessions (.cxs). molvault does not open them: it recognises them, checks the header line
 * ChimeraX writes first (`# ChimeraX Session version N`), stores them unchanged and never converts them.
 * ChimeraX writes most sessions LZ4-framed (its default) or gzip-wrapped; ingest unwraps gzip like any
 * upload, and an LZ4 frame is decoded only as far as the header, so a 1 GB session costs a 64 KB read.
 */
import fs from 'node:fs/promises';
import { decompressBlock } from 'lz4js';
import type { ParseOutcome, Problem } from './types.js';

const HEADER = /^# ChimeraX Session version (\d+)\r?\n/;
const HEADER_PREFIX = '# ChimeraX Session version';
/** Newest session version ChimeraX writes today; newer ones are kept with a warning. */
const NEWEST_KNOWN_VERSION = 3;
const LZ4_FRAME_MAGIC = [0x04, 0x22, 0x4d, 0x18];
/** Enough decoded bytes for the header line; the LZ4 block is decoded no further than this. */
const HEADER_WINDOW = 256;
/** Compressed bytes of the first block handed to the decoder: bounds its work whatever the block claims. */
const BLOCK_PREFIX_BYTES = 1024;
const READ_BYTES = 64 * 1024;

export type SessionCompression = 'lz4' | 'none';

export interface SessionInfo {
  version: number;
  compression: SessionCompression;
}

export type SessionHeader = ({ ok: true } & SessionInfo) | { ok: false; reason: string };

export function isLz4Frame(head: Uint8Array): boolean {
  return LZ4_FRAME_MAGIC.every((byte, i) => head[i] === byte);
}

function startsWithHeaderPrefix(head: Uint8Array): boolean {
  if (head.length < HEADER_PREFIX.length) return false;
  return Buffer.from(head.buffer, head.byteOffset, HEADER_PREFIX.length).toString('latin1') === HEADER_PREFIX;
}

/**
 * The sniffing hook: a plain session header is certain; an LZ4 frame is taken for a session (the
 * only LZ4 content molvault accepts) and its header is checked when the file is validated.
 */
export function sniffSession(head: Uint8Array): { format: 'cxs'; confidence: 'certain' | 'likely' } | undefined {
  if (startsWithHeaderPrefix(head)) return { format: 'cxs', confidence: 'certain' };
  if (isLz4Frame(head)) return { format: 'cxs', confidence: 'likely' };
  return undefined;
}

/** The first bytes of the content inside an LZ4 frame, decoded from the start of its first block only. */
function lz4Prefix(bytes: Uint8Array): Uint8Array | { error: string } {
  // Frame descriptor: FLG, BD, [content size 8], [dictionary id 4], header checksum.
  const flg = bytes[4];
  if (flg === undefined || bytes.length < 7) return { error: 'the LZ4 frame is cut off before its descriptor ends' };
  if ((flg & 0xc0) !== 0x40) return { error: 'the LZ4 frame has an unknown version' };
  let offset = 6 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0) + 1;
  if (bytes.length < offset + 4) return { error: 'the LZ4 frame ends before its first block' };
  const word = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).readUInt32LE(offset);
  offset += 4;
  if (word === 0) return { error: 'the LZ4 frame is empty' };
  const stored = (word & 0x80000000) !== 0;
  const blockLength = word & 0x7fffffff;
  const available = Math.min(blockLength, bytes.length - offset, BLOCK_PREFIX_BYTES);
  if (stored) return bytes.subarray(offset, offset + Math.min(available, HEADER_WINDOW));
  const out = new Uint8Array(HEADER_WINDOW);
  try {
    // A cut-off block decodes its first sequences correctly; writes past `out` are dropped.
    const end = decompressBlock(bytes, out, offset, available, 0);
    return out.subarray(0, Math.min(end, HEADER_WINDOW));
  } catch (error) {
    return { error: `the LZ4 data is corrupt (${(error as Error).message})` };
  }
}

/** Checks the session header at the start of a (gzip-unwrapped) file: plain or LZ4-framed. */
export function readSessionHeader(start: Uint8Array): SessionHeader {
  let compression: SessionCompression = 'none';
  let text = start;
  if (isLz4Frame(start)) {
    compression = 'lz4';
    const decoded = lz4Prefix(start);
    if (!(decoded instanceof Uint8Array)) return { ok: false, reason: `The file is LZ4-compressed, but ${decoded.error}.` };
    text = decoded;
  }
  const line = Buffer.from(text.buffer, text.byteOffset, Math.min(text.length, HEADER_WINDOW)).toString('latin1');
  const match = HEADER.exec(line);
  if (!match) {
    const wrapped = compression === 'lz4' ? 'The file is LZ4-compressed, but its content' : 'The file';
    return { ok: false, reason: `${wrapped} is not a ChimeraX session: it does not start with the line "# ChimeraX Session version N".` };
  }
  const version = Number(match[1]);
  if (!Number.isSafeInteger(version) || version < 1) return { ok: false, reason: `The session header names version ${match[1]}, which no ChimeraX writes.` };
  return { ok: true, version, compression };
}

/** Validation of a session: header only (sessions are stored, not parsed). `size` is the stored size. */
export function inspectSessionBytes(start: Uint8Array, size: number): ParseOutcome {
  const started = performance.now();
  const warnings: Problem[] = [];
  const header = readSessionHeader(start);
  const report = (problems: Problem[]) => ({ problems, warnings, parser: 'session header', parseMs: Math.round(performance.now() - started) });
  if (!header.ok) {
    return {
      ok: false,
      format: 'cxs',
      status: 422,
      code: 'invalid_session',
      message: header.reason,
      report: report([{ code: 'invalid_session', message: header.reason }]),
    };
  }
  if (header.version > NEWEST_KNOWN_VERSION) {
    warnings.push({
      code: 'newer_session_version',
      message: `The session is version ${header.version}; molvault knows versions up to ${NEWEST_KNOWN_VERSION}. It is stored unchanged.`,
    });
  }
  return {
    ok: true,
    format: 'cxs',
    kind: 'session',
    // Sessions are not opened, so their atoms, chains and residues are not counted.
    summary: { atoms: 0, models: 0, chains: 0, residues: 0, session: { version: header.version, compression: header.compression, bytes: size } },
    report: report([]),
  };
}

/** Reads only the start of a stored file and checks its session header. */
export async function inspectSessionFile(path: string): Promise<ParseOutcome> {
  const handle = await fs.open(path, 'r');
  try {
    const { size } = await handle.stat();
    const start = Buffer.alloc(Math.min(size, READ_BYTES));
    await handle.read(start, 0, start.length, 0);
    return inspectSessionBytes(start, size);
  } finally {
    await handle.close();
  }
}

/** Sessions convert to nothing, and nothing converts to a session. */
export function sessionConversionRefusal(from: string, to: string): { status: 415; code: string; message: string } | undefined {
  if (from === to) return undefined;
  if (from === 'cxs') {
    return {
      status: 415,
      code: 'session_not_convertible',
      message: 'ChimeraX sessions cannot be converted to other formats; download the session itself (format=cxs or no format) and open it in ChimeraX.',
    };
  }
  if (to === 'cxs') {
    return {
      status: 415,
      code: 'session_not_convertible',
      message: 'A structure cannot be converted into a ChimeraX session; open it in ChimeraX and save a session there.',
    };
  }
  return undefined;
}
