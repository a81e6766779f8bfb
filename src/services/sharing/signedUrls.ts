import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { SigningKeyRing } from './keys.js';

/** What a signed download URL grants: one version of a structure in one format, on behalf of its signer, until it expires. */
export interface SignedDownload {
  structureId: string;
  version: number;
  /** `original` or a format name. */
  format: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  signerId: string;
}

/** Why a token does not verify: altered or unknown (403), or past its time (410). */
export type SignedDownloadCheck = { ok: true; download: SignedDownload } | { ok: false; reason: 'invalid' | 'expired'; expiresAt?: number };

const TOKEN_VERSION = 'v1';
const CONTEXT = Buffer.from('molvault signed download\0');
const UUID_HEX = /^[0-9a-f]{32}$/;

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** structure (16 bytes), signer (16), version (4), expiry (4), then the format's name. */
function encodePayload(download: SignedDownload): Buffer {
  const numbers = Buffer.alloc(8);
  numbers.writeUInt32BE(download.version, 0);
  numbers.writeUInt32BE(download.expiresAt, 4);
  return Buffer.concat([uuidBytes(download.structureId), uuidBytes(download.signerId), numbers, Buffer.from(download.format, 'ascii')]);
}

function decodePayload(bytes: Buffer): SignedDownload | undefined {
  if (bytes.length < 41 || bytes.length > 56) return undefined;
  const format = bytes.subarray(40).toString('ascii');
  if (!/^[a-z0-9]+$/.test(format)) return undefined;
  return {
    structureId: uuidText(bytes.subarray(0, 16)),
    signerId: uuidText(bytes.subarray(16, 32)),
    version: bytes.readUInt32BE(32),
    expiresAt: bytes.readUInt32BE(36),
    format,
  };
}

function mac(secret: Buffer, kid: string, payload: Buffer): Buffer {
  return createHmac('sha256', secret).update(CONTEXT).update(kid).update('\0').update(payload).digest();
}

/**
 * The token a signed URL carries in its path: `v1.<kid>.<payload>.<HMAC-SHA256>`, base64url. The
 * HMAC covers the key id and every field, so changing any of them (or the key) fails verification.
 */
export async function signDownload(em: EntityManager, keys: SigningKeyRing, download: SignedDownload): Promise<string> {
  if (!UUID_HEX.test(download.structureId.replace(/-/g, '')) || !UUID_HEX.test(download.signerId.replace(/-/g, ''))) {
    throw new Error('signed downloads name a structure and a signer by uuid');
  }
  const key = await keys.signingKey(em);
  const payload = encodePayload(download);
  return `${TOKEN_VERSION}.${key.kid}.${payload.toString('base64url')}.${mac(key.secret, key.kid, payload).toString('base64url')}`;
}

/** The download a token grants, once its signature and expiry check out. */
export async function verifyDownload(em: EntityManager, keys: SigningKeyRing, token: string, now = Date.now()): Promise<SignedDownloadCheck> {
  const parts = token.split('.');
  if (parts.length !== 4 || parts[0] !== TOKEN_VERSION || !/^[A-Za-z0-9_-]{1,40}$/.test(parts[1])) return { ok: false, reason: 'invalid' };
  const [, kid, payloadText, signatureText] = parts;
  const key = await keys.key(em, kid);
  if (!key) return { ok: false, reason: 'invalid' };
  const payload = Buffer.from(payloadText, 'base64url');
  const signature = Buffer.from(signatureText, 'base64url');
  const expected = mac(key.secret, kid, payload);
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return { ok: false, reason: 'invalid' };
  const download = decodePayload(payload);
  if (!download) return { ok: false, reason: 'invalid' };
  if (download.expiresAt * 1000 <= now) return { ok: false, reason: 'expired', expiresAt: download.expiresAt };
  return { ok: true, download };
}
