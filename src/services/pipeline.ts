import { UnrecoverableError } from 'bullmq';
import { Upload } from '../entities/Upload.js';
import type { JobContext } from '../jobs/define.js';
import { ingestStage } from '../jobs/handlers/ingest.js';
import { snapshotStage } from '../jobs/handlers/snapshot.js';
import { validateStage } from '../jobs/handlers/validate.js';

/**
 * Runs ingest → validate → snapshot for one staged upload inside the calling job, instead of as
 * three chained jobs (bulk imports: one job per item, not three hand-offs through Redis). The
 * stages are the very ones the upload jobs run, so the rules and the Postgres states are the same;
 * indexing is still enqueued by the snapshot. Returns the upload's state when it stopped.
 * A rejection (the file's fault) ends the upload and is returned, not thrown; our own faults throw
 * so the calling job retries (every stage is idempotent).
 */
export async function runUploadPipeline(ctx: JobContext, input: { uploadId: string; ownerId: string }): Promise<Upload['state'] | 'missing'> {
  try {
    if ((await ingestStage(input, ctx)).next && (await validateStage(input, ctx)).next) await snapshotStage(input, ctx);
  } catch (error) {
    if (!(error instanceof UnrecoverableError)) throw error;
    // The stage has already recorded the refusal on the upload (endUpload) before throwing.
  }
  const upload = await ctx.em.fork().findOne(Upload, { id: input.uploadId });
  return upload?.state ?? 'missing';
}
