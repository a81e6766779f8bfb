import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { TERMINAL_UPLOAD_STATES, Upload, type UploadError } from '../../entities/Upload.js';
import type { ValidationReport } from '../../formats/types.js';
import type { BlobStore } from '../../storage/blobStore.js';
import type { Staging } from '../../storage/staging.js';
import { deleteBlobIfUnreferenced, lockBlob } from '../quota/blobs.js';
import { releaseUpload } from '../quota/quota.js';
import { notifyUploadChanged } from './events.js';

/**
 * Ends an upload that will not become a version: state rejected (the file is at fault) or
 * failed (molvault is), and nothing half-made left. The staging file goes first; the state change,
 * the release of an unreferenced blob and of the upload's quota reservation commit together, so whoever sees the final state also
 * sees that nothing is left behind.
 */
export async function endUpload(
  em: EntityManager,
  services: { blobs: BlobStore; staging: Staging },
  uploadId: string,
  state: 'rejected' | 'failed',
  error: UploadError,
): Promise<void> {
  const upload = await em.findOne(Upload, { id: uploadId });
  if (!upload || TERMINAL_UPLOAD_STATES.includes(upload.state)) return;
  await services.staging.remove(uploadId);
  const blob = upload.blob;
  const ended = await em.transactional(async (tx) => {
    if (blob) await lockBlob(tx, blob);
    const changed = await tx.nativeUpdate(Upload, { id: uploadId, state: { $in: ['received', 'processing'] } }, { state, error, blob: null });
    if (changed === 0) return false; // ended meanwhile by another delivery of the same job
    if (blob) await deleteBlobIfUnreferenced(tx, services.blobs, blob);
    await releaseUpload(tx, upload.owner, uploadId);
    return true;
  });
  if (ended) await notifyUploadChanged(em, uploadId);
}

export interface UploadEnd {
  uploadId: string;
  state: 'rejected' | 'failed';
  error: UploadError;
  /** What ingest learnt before the refusal, recorded as the one-by-one stages record it. */
  learnt?: { format: string; compression: string | null; validation: ValidationReport | null };
}

/**
 * endUpload for many uploads refused before any blob was recorded for them (a bulk import's chunk):
 * their staging files go first, then one statement ends them, releases their reservations and
 * tells listeners, so a chunk's refusals cost one round trip instead of a transaction each. An
 * upload that holds a blob after all (an earlier delivery got further) is ended by endUpload.
 */
export async function endUnstoredUploads(em: EntityManager, services: { blobs: BlobStore; staging: Staging }, ends: readonly UploadEnd[]): Promise<void> {
  if (ends.length === 0) return;
  await Promise.all(ends.map((end) => services.staging.remove(end.uploadId)));
  const ended = await em.execute<{ id: string }[]>(
    `with ended as (
       update uploads u set state = x.state, error = x.error, format = coalesce(x.format, u.format),
              compression = coalesce(x.compression, u.compression), validation = coalesce(x.validation, u.validation), updated_at = now()
         from jsonb_to_recordset(?::jsonb) as x(id uuid, state text, error jsonb, format text, compression text, validation jsonb)
        where u.id = x.id and u.state in ('received', 'processing') and u.blob_sha256 is null
        returning u.id),
     released as (delete from quota_reservations where upload_id in (select id from ended))
     select id, pg_notify('molvault_upload', id::text) from ended`,
    [JSON.stringify(ends.map((end) => ({ id: end.uploadId, state: end.state, error: end.error, ...end.learnt })))],
  );
  const done = new Set(ended.map((row) => row.id));
  const others = ends.filter((end) => !done.has(end.uploadId));
  if (others.length === 0) return;
  // Not ended above: already ended (endUpload then does nothing), or holding a blob it must release.
  const open = await em.execute<{ id: string }[]>(`select id from uploads where id = any(?::uuid[]) and state in ('received', 'processing')`, [
    sqlArray(others.map((end) => end.uploadId)),
  ]);
  const stillOpen = new Set(open.map((row) => row.id));
  for (const end of others) if (stillOpen.has(end.uploadId)) await endUpload(em, services, end.uploadId, end.state, end.error);
}
