import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, constants as zlibConstants } from 'node:zlib';
import * as tar from 'tar-stream';
import * as yauzl from 'yauzl';
import type { Staging } from '../../storage/staging.js';
import { MANIFEST_FILENAME } from '../exports/manifest.js';

const ARCHIVE_FORMATS = ['zip', 'tar', 'tar.gz'] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];

const TAR_BLOCK = 512;

/** A tar header block: "ustar" magic (POSIX and GNU), or an old v7 header whose checksum adds up. */
function isTarHeader(block: Uint8Array): boolean {
  if (block.length < TAR_BLOCK || block[0] === 0) return false;
  if (Buffer.from(block.subarray(257, 262)).toString('latin1') === 'ustar') return true;
  const stored = Number.parseInt(Buffer.from(block.subarray(148, 156)).toString('latin1').replace(/\0/g, ' ').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === stored;
}

/**
 * What archive the first bytes belong to, by content (the name is not trusted): zip by its local
 * header, tar by its first header block, tar.gz by the first block of the unpacked gzip stream. A
 * gzip that is not a tar (a single `.pdb.gz`) is not an archive.
 */
export function detectArchive(head: Uint8Array): ArchiveFormat | undefined {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'zip';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    try {
      const unpacked = gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
      return isTarHeader(unpacked.subarray(0, TAR_BLOCK)) ? 'tar.gz' : undefined;
    } catch {
      return undefined;
    }
  }
  return isTarHeader(head.subarray(0, TAR_BLOCK)) ? 'tar' : undefined;
}

/** What archive a staged entry is, from its first bytes (undefined when it is none, or gone). */
export async function detectStagedArchive(staging: Staging, id: string): Promise<ArchiveFormat | undefined> {
  const head = await staging.head(id, 64 * 1024);
  return head ? detectArchive(head) : undefined;
}

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'special';

export interface SkipReason {
  code: string;
  message: string;
}

export type EntryVerdict = { kind: 'file'; name: string } | { kind: 'directory' } | { kind: 'skip'; name: string; reason: SkipReason };

/** Control characters out, at most 1024 characters: safe to show and to store. */
export function displayName(name: string): string {
  return [...name]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join('')
    .slice(0, 1024);
}

/**
 * Whether an entry may become an item. Nothing is ever written under an entry's name (items are
 * staged under their ids), but a path that climbs out or is absolute, a link or a device file is
 * a sign of a hostile or broken archive and is skipped with the reason; so are macOS resource
 * forks and hidden files, which are never structures.
 */
export function classifyEntry(rawName: string, type: EntryType): EntryVerdict {
  if (type === 'directory') return { kind: 'directory' };
  const name = displayName(rawName.replace(/\\/g, '/'));
  const hasControl = [...rawName].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (hasControl || name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.split('/').includes('..')) {
    return {
      kind: 'skip',
      name,
      reason: {
        code: 'unsafe_path',
        message: 'The entry has an absolute path, climbs out of the archive ("..") or holds control characters; it was not extracted.',
      },
    };
  }
  if (type === 'symlink' || type === 'hardlink') {
    return {
      kind: 'skip',
      name,
      reason: { code: 'link_entry', message: `The entry is a ${type === 'symlink' ? 'symbolic' : 'hard'} link, not a file; links are never followed.` },
    };
  }
  if (type === 'special') {
    return { kind: 'skip', name, reason: { code: 'special_file', message: 'The entry is a device, FIFO or socket, not a file.' } };
  }
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0) return { kind: 'directory' };
  if (parts.includes('__MACOSX')) {
    return { kind: 'skip', name, reason: { code: 'macos_metadata', message: 'macOS resource data (__MACOSX), not a structure.' } };
  }
  if (parts.some((part) => part.startsWith('.'))) {
    return { kind: 'skip', name, reason: { code: 'hidden_file', message: 'Hidden files (names starting with ".") are not imported.' } };
  }
  return { kind: 'file', name: parts.join('/') };
}

/** The manifest of an export archive sits at the root under this name. */
export const isManifestPath = (name: string) => name === MANIFEST_FILENAME;

// ---------------------------------------------------------------------------------------------
// zip: the central directory (read first, with random access) lists every entry and its size, so
// limits and quota are decided before a byte is extracted; entries are then read one at a time.

export interface ZipListing {
  zip: yauzl.ZipFile;
  entries: { entry: yauzl.Entry; rawName: string; type: EntryType; size: number; encrypted: boolean; decodable: boolean }[];
}

const S_IFMT = 0o170000;

function zipEntryType(entry: yauzl.Entry, name: string): EntryType {
  const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (mode === 0o120000) return 'symlink';
  if (mode === 0o040000 || name.endsWith('/')) return 'directory';
  if (mode === 0o010000 || mode === 0o020000 || mode === 0o060000 || mode === 0o140000) return 'special';
  return 'file';
}

/** Opens a zip and reads its central directory (at most `maxEntries`; more throws TooManyEntries). */
export async function listZip(file: string, maxEntries: number): Promise<ZipListing> {
  // decodeStrings off: yauzl would otherwise fail the whole archive on one "../" name; we skip that entry instead.
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  const entries: ZipListing['entries'] = [];
  let files = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const rawName = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
      const type = zipEntryType(entry, rawName);
      if (type !== 'directory' && ++files > maxEntries) throw new TooManyEntries(maxEntries);
      entries.push({ entry, rawName, type, size: entry.uncompressedSize, encrypted: entry.isEncrypted(), decodable: entry.canDecodeFileData() });
    }
  } catch (error) {
    zip.close();
    throw error;
  }
  return { zip, entries };
}

export async function openZipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return zip.openReadStreamPromise(entry);
}

export class TooManyEntries extends Error {
  constructor(readonly max: number) {
    super(`The archive holds more than ${max} files, the most one import accepts.`);
    this.name = 'TooManyEntries';
  }
}

/** The archive unpacks past a limit (total size or expansion ratio): a decompression bomb, or simply too big. */
export class ExpansionLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpansionLimitError';
  }
}

// ---------------------------------------------------------------------------------------------
// tar and tar.gz: one pass over the stream, entry by entry.

export interface TarEntry {
  rawName: string;
  type: EntryType;
  size: number;
  /** The entry's bytes; read it to the end or call `skip()`. */
  stream: Readable;
  skip(): Promise<void>;
}

function tarEntryType(type: tar.Header['type'] | null | undefined): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
    case null:
    case undefined:
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    default:
      return 'special';
  }
}

/**
 * Walks a tar (gunzipped on the way for tar.gz) and hands each entry to `visit`, which must consume
 * or skip it. `maxExpandedBytes` bounds the unpacked stream itself, so a gzip bomb stops early.
 */
export async function walkTar(file: string, gzipped: boolean, maxExpandedBytes: number, visit: (entry: TarEntry) => Promise<void>): Promise<void> {
  const extract = tar.extract();
  let unpacked = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      unpacked += chunk.length;
      if (unpacked > maxExpandedBytes) callback(new ExpansionLimitError(expandedTooFar(maxExpandedBytes)));
      else callback(null, chunk);
    },
  });
  const source = createReadStream(file);
  const stages: NodeJS.ReadWriteStream[] = gzipped ? [createGunzip(), counter] : [counter];
  const feeding = pipeline(source, ...(stages as [Transform]), extract as unknown as NodeJS.WritableStream);
  // The walk may stop early (a refusal): the feeding pipeline then fails too, and its error must not go unhandled.
  feeding.catch(() => {});
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const stream = Readable.from(entry);
      const drain = async () => {
        for await (const _chunk of stream) {
          // discarded
        }
      };
      await visit({ rawName: header.name, type: tarEntryType(header.type), size: header.size ?? 0, stream, skip: drain });
      if (!stream.readableEnded) await drain();
    }
    await feeding;
  } catch (error) {
    source.destroy();
    extract.destroy();
    // The feeding side's reason (a limit, corrupt gzip) is the better explanation when it failed first.
    const fed = await feeding.then(
      () => undefined,
      (e: unknown) => e,
    );
    throw fed instanceof ExpansionLimitError ? fed : error;
  }
}

export function expandedTooFar(limit: number): string {
  return `The archive unpacks to more than ${limit} bytes, past the limit for one import (it may be a decompression bomb); nothing was imported.`;
}
