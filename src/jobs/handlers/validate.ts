import { UnrecoverableError } from 'bullmq';
import { enqueue } from '../../queue/enqueue.js';
import { snapshotJob, validateJob } from '../../queue/jobs.js';
import { validateUpload } from '../../services/upload/stages.js';
import { failUploadStage } from '../../services/upload/uploads.js';
import { handleJob } from '../define.js';

/** Stored blob → parsed and checked (services/upload/validate.ts), then the snapshot. A refused file fails the job for good. */
export const validateHandler = handleJob(validateJob, {
  async handle(input, ctx) {
    const outcome = await validateUpload(ctx, input.uploadId);
    if (outcome.refused) throw new UnrecoverableError(outcome.refused);
    if (outcome.next) await enqueue(ctx.queues, snapshotJob, input);
    return outcome.result;
  },
  async onFinalFailure({ uploadId }, error, ctx) {
    await failUploadStage(ctx.em, ctx, 'validate', uploadId, error);
  },
});
