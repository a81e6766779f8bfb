import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import busboy from 'busboy';
import type { Context } from 'koa';
import { formatBytes } from '../../lib/bytes.js';
import { type Staging, stageThrough } from '../../storage/staging.js';
import { ApiError } from '../errors.js';
import { sentJson } from '../middleware/jsonBody.js';

export interface ReceivedUpload {
  fields: Record<string, string[]>;
  filename: string;
  bytes: number;
  /** sha256 of the bytes exactly as received. */
  sha256: string;
  /** The first bytes, for an early look at what was sent. */
  head: Buffer;
}

const HEAD_BYTES = 64 * 1024;
/** Without a Content-Length, quota is reserved in steps of this size as the bytes arrive. */
const RESERVE_STEP_BYTES = 8 * 1024 * 1024;

/** Sees the file's bytes as they are received (a parse while the upload arrives, api/intake/receipt.ts). */
export interface UploadObserver {
  data(chunk: Buffer): void;
  /** The last byte was received (before it is made durable). */
  end(): void;
}

/** Holds quota for the upload: at least `needed` bytes (or throws the 507), up to `wanted`; returns what it holds. */
export interface QuotaHold {
  reserve(needed: number, wanted: number): Promise<number>;
}
const MULTIPART_OVERHEAD = 1024 * 1024;

function tooLarge(max: number) {
  return new ApiError(413, 'file_too_large', `The file is larger than the ${formatBytes(max)} this server accepts.`, { maxBytes: max });
}

/**
 * 415: the request carried JSON where a file belongs. Said plainly, because the body is gone by now
 * and would otherwise look like an empty file.
 */
function fileExpected(ctx: Context) {
  return new ApiError(
    415,
    'file_expected',
    `A structure file was expected, as the multipart/form-data field "file" or as the raw request body (e.g. Content-Type: application/octet-stream or chemical/x-pdb), but the request sent ${ctx.get('content-type') || 'JSON'}. Send name, tags and metadata as multipart fields (metadata as JSON text) or in the query string.`,
    { expected: ['multipart/form-data (field "file")', 'the raw file as the body'] },
  );
}

/**
 * Streams one uploaded file into staging (never into memory), counting bytes and stopping at
 * `maxBytes`. Accepts multipart/form-data (field `file` plus text fields) or a raw body.
 * With `quota`, the declared Content-Length is reserved before a byte is stored (or, without one,
 * the bytes as they arrive), and a refusal stops the stream at once.
 * On any refusal the staging directory is removed before the error propagates.
 */
export async function receiveUpload(
  ctx: Context,
  staging: Staging,
  uploadId: string,
  maxBytes: number,
  quota?: QuotaHold,
  observer?: UploadObserver,
): Promise<ReceivedUpload> {
  // The JSON body parser has read (or refused) a JSON body already; a structure is never sent as JSON.
  if (sentJson(ctx)) throw fileExpected(ctx);
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > maxBytes + MULTIPART_OVERHEAD) {
    drainRefused(ctx);
    throw tooLarge(maxBytes);
  }
  let reserved = 0;
  if (quota && declared > 0) {
    try {
      reserved = await quota.reserve(declared, declared);
    } catch (error) {
      drainRefused(ctx);
      throw error;
    }
  }
  const limits: StreamLimits = { maxBytes, quota, reserved, observer };
  try {
    if (ctx.is('multipart/form-data')) return await receiveMultipart(ctx, staging, uploadId, limits);
    return await receiveRaw(ctx, staging, uploadId, limits);
  } catch (error) {
    // The store may be what failed: its refusal is the answer, not a failure to clean up after it.
    await staging.remove(uploadId).catch(() => {});
    drainRefused(ctx);
    throw error;
  }
}

/** Keeps reading (and discarding) the rest of a refused body so the client can read the answer. */
export function drainRefused(ctx: Context) {
  ctx.req.resume();
  ctx.set('Connection', 'close');
}

interface MeterState {
  bytes: number;
  head: Buffer[];
  headBytes: number;
  hash: Hash;
}

const newMeterState = (): MeterState => ({ bytes: 0, head: [], headBytes: 0, hash: createHash('sha256') });

interface StreamLimits {
  maxBytes: number;
  quota?: QuotaHold;
  /** Quota held so far. */
  reserved: number;
  observer?: UploadObserver;
}

/**
 * Counts, hashes and keeps the first bytes of a stream on its way to disk; refuses past maxBytes,
 * and past the quota: a chunk beyond what is reserved waits for more to be reserved before it is written.
 */
function meter(limits: StreamLimits, state: MeterState) {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      state.bytes += chunk.length;
      if (state.bytes > limits.maxBytes) {
        callback(tooLarge(limits.maxBytes));
        return;
      }
      if (limits.quota && state.bytes > limits.reserved) {
        limits.quota.reserve(state.bytes, Math.min(limits.maxBytes, state.bytes + RESERVE_STEP_BYTES)).then(
          (granted) => {
            limits.reserved = granted;
            pass(chunk, state, callback, limits.observer);
          },
          (error) => callback(error),
        );
        return;
      }
      pass(chunk, state, callback, limits.observer);
    },
    flush(callback) {
      limits.observer?.end();
      callback();
    },
  });
}

function pass(chunk: Buffer, state: MeterState, callback: (error?: Error | null, data?: Buffer) => void, observer?: UploadObserver) {
  state.hash.update(chunk);
  observer?.data(chunk);
  if (state.headBytes < HEAD_BYTES) {
    const part = chunk.subarray(0, HEAD_BYTES - state.headBytes);
    state.head.push(part);
    state.headBytes += part.length;
  }
  callback(null, chunk);
}

async function receiveRaw(ctx: Context, staging: Staging, uploadId: string, limits: StreamLimits): Promise<ReceivedUpload> {
  const state = newMeterState();
  // Durable once written (fsynced, or in the object store): answered 202, it must survive a crash.
  await stageThrough(staging, uploadId, ctx.req, meter(limits, state));
  const fields: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(ctx.query)) {
    fields[key] = Array.isArray(value) ? value : value !== undefined ? [value] : [];
  }
  const disposition = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(ctx.get('content-disposition'));
  const filename = fields.filename?.[0] ?? (disposition ? decodeURIComponent(disposition[1]) : 'upload');
  return { fields, filename, bytes: state.bytes, sha256: state.hash.digest('hex'), head: Buffer.concat(state.head) };
}

function receiveMultipart(ctx: Context, staging: Staging, uploadId: string, limits: StreamLimits): Promise<ReceivedUpload> {
  return new Promise((resolve, reject) => {
    const fields: Record<string, string[]> = {};
    let parser: busboy.Busboy;
    try {
      // Browsers and fetch send file names as raw UTF-8; busboy's default (latin1) would garble every non-ASCII name.
      parser = busboy({ headers: ctx.req.headers, defParamCharset: 'utf8', limits: { files: 1, fields: 100, fieldSize: 1024 * 1024, parts: 200 } });
    } catch (error) {
      reject(new ApiError(400, 'invalid_multipart', `The multipart body cannot be read: ${(error as Error).message}`));
      return;
    }
    let fileDone: Promise<Omit<ReceivedUpload, 'fields'>> | undefined;
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      ctx.req.unpipe(parser);
      reject(error);
    };
    parser.on('field', (name, value) => {
      fields[name] = [...(fields[name] ?? []), value];
    });
    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || fileDone) {
        stream.resume();
        return;
      }
      const state = newMeterState();
      fileDone = stageThrough(staging, uploadId, stream, meter(limits, state)).then(() => ({
        filename: info.filename || 'upload',
        bytes: state.bytes,
        sha256: state.hash.digest('hex'),
        head: Buffer.concat(state.head),
      }));
      fileDone.catch(fail);
    });
    parser.on('filesLimit', () => fail(new ApiError(400, 'too_many_files', 'Send one file per upload; use the bulk import endpoint for many.')));
    parser.on('error', (error) => fail(multipartError(error as Error)));
    parser.on('close', () => {
      if (failed) return;
      if (!fileDone) {
        fail(new ApiError(400, 'missing_file', 'The upload has no file: send it in a multipart field named "file".'));
        return;
      }
      fileDone.then((file) => resolve({ fields, ...file }), fail);
    });
    ctx.req.on('aborted', () => fail(new ApiError(400, 'upload_aborted', 'The upload was interrupted before it finished.')));
    ctx.req.pipe(parser);
  });
}

/** The last path component, without control characters, at most 255 characters. */
export function safeFilename(name: string): string {
  const base = [...name.replace(/^.*[\\/]/, '')]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join('')
    .trim();
  return (base || 'upload').slice(0, 255);
}

/** A multipart body busboy cannot read, said so that the usual cause (a name breaking a part's header) can be fixed. */
export function multipartError(error: Error): ApiError {
  const hint = /part header/i.test(error.message)
    ? ' (a file name or field name holding a line break or a NUL character breaks the header of its part; rename the file)'
    : '';
  return new ApiError(400, 'invalid_multipart', `The multipart body cannot be read: ${error.message}${hint}.`);
}
