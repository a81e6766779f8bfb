import type { Readable } from 'node:stream';
import type { Context } from 'koa';
import type { BlobStore } from '../../storage/blobStore.js';
import { ApiError } from '../errors.js';
import { type ByteRange, parseRange } from './range.js';

// Bidi controls (U+061C, U+200E/F, U+202A-E, U+2066-9) make "evil\u202Egpj.exe" read as "evilexe.jpg".
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// C0 and C1 control characters, DEL included (CR and LF would split the header).
const CONTROLS = /[\p{Cc}]/gu;
const MAX_NAME = 200;

/** The file name with what never belongs in one removed: controls, bidi controls, path separators. */
function cleanFilename(filename: string): string {
  const cleaned = filename.normalize('NFC').replace(BIDI_CONTROLS, '').replace(CONTROLS, '').replace(/[/\\]/g, '_').trim().replace(/^\.+/, '');
  return [...cleaned].slice(0, MAX_NAME).join('') || 'download';
}

/** The ASCII fallback of RFC 6266: accents dropped, anything else outside printable ASCII, and quotes, made '_'. */
function asciiFallback(name: string): string {
  const ascii = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^\x20-\x7e]/g, '_')
    .replace(/["%;\\]/g, '_');
  return ascii.replace(/^\.+/, '') || 'download';
}

/** RFC 5987 `value-chars`: attr-chars as they are, every other byte of the UTF-8 percent-encoded. */
function encodeRfc5987(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `Content-Disposition` for a download (RFC 6266): an ASCII `filename` for old clients and the exact
 * name as `filename*=UTF-8''…`; both without controls, bidi controls, quotes or path separators.
 */
export function attachment(filename: string): string {
  const name = cleanFilename(filename);
  return `attachment; filename="${asciiFallback(name)}"; filename*=UTF-8''${encodeRfc5987(name)}`;
}

/** The strong ETag of stored bytes: their sha256, which never names other content. */
export const etagOf = (sha256: string) => `"${sha256}"`;

/** Whether `If-None-Match` names this ETag (or `*`): the client's copy is current. */
export function clientHasCurrent(koa: Context, etag: string): boolean {
  const ifNoneMatch = koa.get('if-none-match');
  return !!ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*');
}

export interface StoredFile {
  etag: string;
  size: number;
  /** What the 416 sentence calls it: "file", "archive". */
  noun: string;
  read: (range?: ByteRange) => Readable;
}

/**
 * Answers a download of stored bytes once its other headers are set: 304 when the client's copy
 * is current, 206 for one satisfiable range, 416 (thrown) for a range outside the file, else 200
 * with the whole file. Says which it sent, so a caller counts whole downloads only.
 */
export function sendStoredFile(koa: Context, file: StoredFile): 'not_modified' | 'partial' | 'whole' {
  koa.set('ETag', file.etag);
  koa.set('Accept-Ranges', 'bytes');
  if (clientHasCurrent(koa, file.etag)) {
    koa.status = 304;
    return 'not_modified';
  }
  const range = parseRange(koa.get('range'), file.size, koa.get('if-range'), file.etag);
  if (range === 'unsatisfiable') {
    koa.set('Content-Range', `bytes */${file.size}`);
    throw new ApiError(416, 'range_not_satisfiable', `The requested range is outside the ${file.noun} (${file.size} bytes).`);
  }
  if (range) {
    koa.status = 206;
    koa.set('Content-Range', `bytes ${range.start}-${range.end}/${file.size}`);
    koa.length = range.end - range.start + 1;
    koa.body = file.read(range);
    return 'partial';
  }
  koa.status = 200;
  koa.length = file.size;
  koa.body = file.read();
  return 'whole';
}

/**
 * With DOWNLOAD_REDIRECT=1 and a store that signs URLs (S3), answers 302 to a presigned GET of the
 * blob, valid for DOWNLOAD_REDIRECT_TTL, carrying the Content-Disposition and Content-Type already
 * set, so the bytes go from the store to the client without passing through the API. A client whose
 * copy is current still gets 304 here. False when it did not answer (the caller streams the bytes).
 */
export async function redirectToStore(
  koa: Context,
  blobs: BlobStore,
  settings: { downloadRedirect: boolean; downloadRedirectTtlMs: number },
  sha256: string,
): Promise<boolean> {
  if (!settings.downloadRedirect || !blobs.presignGet) return false;
  const etag = etagOf(sha256);
  koa.set('ETag', etag);
  if (clientHasCurrent(koa, etag)) {
    koa.status = 304;
    return true;
  }
  const url = await blobs.presignGet(sha256, {
    expiresInSeconds: Math.max(1, Math.round(settings.downloadRedirectTtlMs / 1000)),
    contentDisposition: koa.response.get('Content-Disposition') || undefined,
    contentType: koa.response.get('Content-Type') || undefined,
  });
  // The URL expires; a cache must not keep the redirect longer than the URL lives.
  koa.set('Cache-Control', 'private, no-store');
  koa.redirect(url);
  return true;
}
