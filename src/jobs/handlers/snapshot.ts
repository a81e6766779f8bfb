import { snapshotJob } from '../../queue/jobs.js';
import { indexStoredUpload, snapshotUpload } from '../../services/upload/stages.js';
import { failUploadStage } from '../../services/upload/uploads.js';
import { handleJob } from '../define.js';

/** Validated upload → a new version (services/upload/snapshot.ts), then indexing. */
export const snapshotHandler = handleJob(snapshotJob, {
  async handle(input, ctx) {
    const outcome = await snapshotUpload(ctx, input.uploadId);
    if (outcome.structureId) await indexStoredUpload(ctx, { ...input, structureId: outcome.structureId });
    return outcome;
  },
  async onFinalFailure({ uploadId }, error, ctx) {
    await failUploadStage(ctx.em, ctx, 'snapshot', uploadId, error);
  },
});
