import { UnrecoverableError } from 'bullmq';
import { Upload, type UploadError } from '../../entities/Upload.js';
import type { JobContext } from '../../jobs/define.js';
import { ingestStage } from '../../jobs/handlers/ingest.js';
import { snapshotStage } from '../../jobs/handlers/snapshot.js';
import { validateStage } from '../../jobs/handlers/validate.js';
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
 * three chained jobs (bulk imports: one job per item, not three hand-offs through Redis). The
 * stages are the very ones the upload jobs run, so the rules and the Postgres states are the same;
 * indexing is still enqueued by the snapshot. Returns the upload's state when it stopped.
 * A rejection (the file's fault) ends the upload and is returned, not thrown; our own faults throw
 * so the calling job retries (every stage is idempotent).
 */
export async function runUploadPipeline(
  ctx: JobContext,
  input: { uploadId: string; ownerId: string },
  hooks: PipelineHooks = {},
): Promise<Upload['state'] | 'missing'> {
  try {
    if ((await ingestStage(input, ctx)).next && (await passesAfterIngest(ctx, input.uploadId, hooks)) && (await validateStage(input, ctx)).next) {
      await snapshotStage(input, ctx);
    }
  } catch (error) {
    if (!(error instanceof UnrecoverableError)) throw error;
    // The stage has already recorded the refusal on the upload (endUpload) before throwing.
  }
  const upload = await ctx.em.fork().findOne(Upload, { id: input.uploadId });
  return upload?.state ?? 'missing';
}

async function passesAfterIngest(ctx: JobContext, uploadId: string, hooks: PipelineHooks): Promise<boolean> {
  if (!hooks.afterIngest) return true;
  const upload = await ctx.em.fork().findOne(Upload, { id: uploadId });
  if (!upload || upload.state !== 'processing' || !upload.blob) return false;
  const refusal = await hooks.afterIngest(upload);
  if (!refusal) return true;
  await endUpload(ctx.em, ctx, uploadId, 'rejected', refusal);
  return false;
}
