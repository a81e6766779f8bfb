import type { EntityManager } from '@mikro-orm/postgresql';
import { TERMINAL_UPLOAD_STATES, Upload, type UploadError } from '../entities/Upload.js';
import type { BlobStore } from '../storage/blobStore.js';
import type { Staging } from '../storage/staging.js';
import { deleteBlobIfUnreferenced, lockBlob } from './blobs.js';
import { releaseUpload } from './quota.js';
import { notifyUploadChanged } from './uploadEvents.js';

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
