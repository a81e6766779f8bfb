import type { EntityManager } from '@mikro-orm/postgresql';
import { TERMINAL_UPLOAD_STATES, Upload, type UploadError } from '../entities/Upload.js';
import type { BlobStore } from '../storage/blobStore.js';
import type { Staging } from '../storage/staging.js';
import { releaseBlobIfUnreferenced } from './blobs.js';
import { notifyUploadChanged } from './uploadEvents.js';

/**
 * Ends an upload that will not become a version: state rejected (the file is at fault) or
 * failed (molvault is), and nothing half-made left: no staging file, no unreferenced blob.
 */
export async function endUpload(
  em: EntityManager,
  services: { blobs: BlobStore; staging: Staging },
  uploadId: string,
  state: 'rejected' | 'failed',
  error: UploadError,
): Promise<void> {
  const upload = await em.findOne(Upload, { id: uploadId });
  if (!upload) return;
  if (TERMINAL_UPLOAD_STATES.includes(upload.state)) return;
  const blob = upload.blob;
  upload.state = state;
  upload.error = error;
  upload.blob = null;
  await em.flush();
  await services.staging.remove(uploadId);
  if (blob) await releaseBlobIfUnreferenced(em, services.blobs, blob, uploadId);
  await notifyUploadChanged(em, uploadId);
}
