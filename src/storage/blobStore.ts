import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { Refusal } from '../lib/refusal.js';

/** What a writer promises about the bytes it puts: checked before the blob becomes visible. */
export interface PromisedBlob {
  sha256: string;
  size: number;
}

export interface BlobHead {
  size: number;
  /** When the store last wrote it (garbage collection's grace period reads this). */
  modifiedAt: Date;
}

export interface ListedBlob extends BlobHead {
  sha256: string;
}

export interface ByteRange {
  /** Inclusive, as in HTTP Range. */
  start: number;
  end: number;
}

/**
 * Content-addressed, immutable bytes, without local paths: a blob is put as a stream whose promised
 * sha256 and size are checked before it becomes visible, read as a stream (whole or a byte range),
 * headed, listed by hash prefix and deleted. An existing blob is never overwritten. Code that needs a
 * file on disk (engines, parsers, archives) borrows one through `withFile` and gives it back.
 */
export interface BlobStore {
  readonly kind: 'local' | 's3';
  /**
   * Stores the stream under `promised.sha256` unless that blob exists. Fails with BlobMismatchError,
   * leaving nothing visible, when the bytes are not what was promised (or the stream fails).
   */
  put(source: Readable, promised: PromisedBlob): Promise<{ created: boolean }>;
  /**
   * Stores a file the caller wrote in its own scratch space. With `move`, the file is the store's
   * afterwards (renamed into place where it can be, removed otherwise); without, it is left alone.
   * With `hashed`, the caller computed `promised.sha256` from these very bytes as it wrote them (a
   * pool task, a moment ago): a store that would read the file only to hash it checks its size
   * instead; `verify` still re-reads every blob. With `durable`, the file's bytes are on the disk
   * already (the pool task fsynced them, or the file is a second name for a staged file fsynced when
   * it was received): a store that would fsync it before renaming it into place leaves that out (the
   * new name is still made durable with its directory).
   */
  putFile(file: string, promised: PromisedBlob, options?: PutFileOptions): Promise<{ created: boolean }>;
  /** The blob's bytes, or a range of them; the stream fails with BlobMissingError when it is absent. */
  read(sha256: string, range?: ByteRange): Readable;
  head(sha256: string): Promise<BlobHead | undefined>;
  has(sha256: string): Promise<boolean>;
  size(sha256: string): Promise<number | undefined>;
  delete(sha256: string): Promise<void>;
  /** Every blob whose hash starts with `prefix` (all without one), in no particular order. */
  list(prefix?: string): AsyncIterable<ListedBlob>;
  /** Re-reads a blob and checks its bytes against its name. */
  verify(sha256: string): Promise<boolean>;
  /**
   * A file holding the blob's bytes for the duration of `use`: the store's own file where it keeps
   * one (read it, never change it), or a copy streamed into `scratchDir` and removed afterwards.
   */
  withFile<T>(sha256: string, use: (file: string) => Promise<T>): Promise<T>;
  /** A short-lived URL a client can GET the blob from directly, where the backend has them. */
  presignGet?(sha256: string, options: PresignOptions): Promise<string>;
  /** Where the blob lives, for reports and logs: a path, or an s3:// address. */
  location(sha256: string): string;
  /** What lies in the store's space but is no blob (a local file not named by its hash), for reports. */
  strays?(): AsyncIterable<string>;
  /** Releases connections. */
  close(): Promise<void>;
}

export interface PresignOptions {
  expiresInSeconds: number;
  /** Sent back as Content-Disposition and Content-Type by the store. */
  contentDisposition?: string;
  contentType?: string;
}

const SHA256 = /^[0-9a-f]{64}$/;

export function isSha256(value: string): boolean {
  return SHA256.test(value);
}

export function assertHash(sha256: string) {
  if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
}

/** The bytes put were not the bytes promised: nothing was stored. */
export interface PutFileOptions {
  move?: boolean;
  hashed?: boolean;
  durable?: boolean;
}

export class BlobMismatchError extends Error {
  constructor(
    readonly promised: PromisedBlob,
    readonly got: { sha256?: string; size: number },
  ) {
    super(
      got.sha256
        ? `The bytes written (${got.size} bytes, sha256 ${got.sha256}) are not the ${promised.size} bytes with sha256 ${promised.sha256} that were promised; nothing was stored.`
        : got.size > promised.size
          ? `More than the ${promised.size} bytes promised (sha256 ${promised.sha256}) were written; nothing was stored.`
          : `Only ${got.size} of the ${promised.size} bytes promised (sha256 ${promised.sha256}) were written; nothing was stored.`,
    );
    this.name = 'BlobMismatchError';
  }
}

export class BlobMissingError extends Error {
  readonly code = 'ENOENT';
  constructor(readonly sha256: string) {
    super(`The blob ${sha256} is not in the store.`);
    this.name = 'BlobMissingError';
  }
}

/**
 * The store refused a write because it is full or over its quota (an object store's QuotaExceeded,
 * InsufficientStorage or XMinioStorageFull). The upload path answers it as 507 `storage_full`.
 */
export class StorageFullError extends Refusal {
  constructor(readonly detail: string) {
    super(507, 'storage_full', 'The storage behind molvault is full, so nothing more can be stored; an administrator must make room. Please try again later.');
  }
}

/** The object store could not be reached or kept failing: the operation can be retried later. */
export class StoreUnavailableError extends Refusal {
  constructor(message: string, cause?: unknown) {
    super(503, 'storage_unavailable', `${message} Nothing was stored; please try again in a moment.`);
    this.cause = cause;
  }
}

/**
 * Passes bytes through while hashing and counting them against a promise: fails at once when more
 * bytes arrive than promised, and at the end unless size and sha256 match. Whatever it feeds must
 * not become visible unless this stream ends cleanly.
 */
export function promiseChecker(promised: PromisedBlob): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > promised.size) {
        done(new BlobMismatchError(promised, { size }));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const sha256 = hash.digest('hex');
      done(sha256 === promised.sha256 && size === promised.size ? null : new BlobMismatchError(promised, { sha256, size }));
    },
  });
}

/** Hashes a stream to its end: what `verify` compares with the blob's name. */
export async function sha256Of(source: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of source) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
