import { Upload, type UploadError } from '../../entities/Upload.js';
import type { WorkContext } from '../../runtime/context.js';
import { indexStoredUpload, ingestUpload, snapshotUpload, validateUpload } from './stages.js';
import { endUpload } from './uploads.js';

export interface PipelineHooks {
  /**
   * Runs once the content is hashed and in the blob store (upload `processing`, `blob` set), before
   * it is read. An answer ends the upload as rejected with that reason (a bulk import skipping
   * content the project already holds). Runs again on a repeated delivery, so it must be idempotent.
   */
  afterIngest?(upload: Upload): Promise<UploadError | undefined>;
}

/**
 * Runs ingest → validate → snapshot for one staged upload inside the calling job, instead of as
 * three chained jobs (an import item: one job, not three hand-offs through Redis). The stages are
 * the very ones the upload jobs run, so the rules and the Postgres states are the same; indexing is
 * still a job of its own. Returns the upload's state when it stopped. A refusal (the file's fault)
 * ends the upload and is returned, not thrown; our own faults throw so the calling job retries
 * (every stage is idempotent).
 */
export async function runUploadPipeline(
  ctx: WorkContext,
  input: { uploadId: string; ownerId: string },
  hooks: PipelineHooks = {},
): Promise<Upload['state'] | 'missing'> {
  if (
    (await ingestUpload(ctx, input.uploadId)).next &&
    (await passesAfterIngest(ctx, input.uploadId, hooks)) &&
    (await validateUpload(ctx, input.uploadId)).next
  ) {
    const stored = await snapshotUpload(ctx, input.uploadId);
    if (stored.structureId) await indexStoredUpload(ctx, { ...input, structureId: stored.structureId });
  }
  const upload = await ctx.em.fork().findOne(Upload, { id: input.uploadId });
  return upload?.state ?? 'missing';
}

async function passesAfterIngest(ctx: WorkContext, uploadId: string, hooks: PipelineHooks): Promise<boolean> {
  if (!hooks.afterIngest) return true;
  const upload = await ctx.em.fork().findOne(Upload, { id: uploadId });
  if (!upload || upload.state !== 'processing' || !upload.blob) return false;
  const refusal = await hooks.afterIngest(upload);
  if (!refusal) return true;
  await endUpload(ctx.em, ctx, uploadId, 'rejected', refusal);
  return false;
}
