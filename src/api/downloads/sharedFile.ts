import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import type { Structure } from '../../entities/Structure.js';
import type { StructureVersion } from '../../entities/StructureVersion.js';
import { MEDIA_TYPES } from '../../formats/types.js';
import type { AppContext } from '../../runtime/context.js';
import { chargeDerivative } from '../../services/conversions/derivations.js';
import { countDownload } from '../../services/structures/counters.js';
import { storedBlob } from '../../services/versions/lookup.js';
import { ApiError } from '../errors.js';
import { attachment, etagOf, sendStoredFile } from '../http/download.js';
import { setDerivationHeaders } from './conversion.js';
import { versionFile } from './versionFile.js';

/** How long a signed URL or a share link waits for a conversion before answering 503. */
const CONVERSION_WAIT_SECONDS = 20;

/**
 * Sends a version's file in `format` to someone holding a signed URL or a share link (no bearer
 * token): a conversion is charged to the structure's owner of record, the answer is revalidated on
 * every use (so a revoked grant is not served from a cache) and sends no referrer. Says whether the
 * whole file went out (a GET), which is what counts as a download.
 */
export async function sendSharedFile(
  app: AppContext,
  em: EntityManager,
  koa: Context,
  structure: Structure,
  version: StructureVersion,
  format: string,
): Promise<boolean> {
  const file = await versionFile(app, koa, em, structure.owner, version, format, CONVERSION_WAIT_SECONDS);
  if ('underWay' in file) {
    koa.set('Retry-After', '10');
    throw new ApiError(503, 'conversion_under_way', 'This file is still being converted; try again in a few seconds.');
  }
  if (file.derivation) {
    setDerivationHeaders(koa, file.derivation);
    await chargeDerivative(em, structure.owner, file.derivation.id);
  }
  const blob = await storedBlob(em, file.blobSha256);
  koa.set('Cache-Control', 'private, no-cache');
  koa.set('Content-Disposition', attachment(file.filename));
  koa.set('Referrer-Policy', 'no-referrer');
  koa.type = MEDIA_TYPES[file.format] ?? 'application/octet-stream';
  const sent = sendStoredFile(koa, { etag: etagOf(blob.sha256), size: blob.size, noun: 'file', read: (range) => app.blobs.read(blob.sha256, range) });
  const whole = sent === 'whole' && koa.method === 'GET';
  if (whole) await countDownload(em, structure.id);
  return whole;
}
