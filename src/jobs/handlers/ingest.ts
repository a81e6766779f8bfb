import { UnrecoverableError } from 'bullmq';
import { enqueue } from '../../queue/enqueue.js';
import { ingestJob, validateJob } from '../../queue/jobs.js';
import { ingestUpload } from '../../services/upload/stages.js';
import { failUploadStage } from '../../services/upload/uploads.js';
import { handleJob } from '../define.js';

/** Staged upload → blob store (services/upload/ingest.ts), then validation. A refused file fails the job for good. */
export const ingestHandler = handleJob(ingestJob, {
  async handle(input, ctx) {
    const outcome = await ingestUpload(ctx, input.uploadId);
    if (outcome.refused) throw new UnrecoverableError(outcome.refused);
    if (outcome.next) await enqueue(ctx.queues, validateJob, input);
    return outcome.result;
  },
  async onFinalFailure({ uploadId }, error, ctx) {
    await failUploadStage(ctx.em, ctx, 'ingest', uploadId, error);
  },
});
