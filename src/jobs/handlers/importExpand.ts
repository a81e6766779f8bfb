import { importExpandJob } from '../../queue/jobs.js';
import { expandImport, failExpansion } from '../../services/imports/expand.js';
import { handleJob } from '../define.js';

/** A child of the batch job for an archive: unpacks it into items, then adds their children (services/imports/expand.ts). */
export const importExpandHandler = handleJob(importExpandJob, {
  async handle({ batchId }, ctx) {
    return expandImport(ctx, batchId);
  },
  async onFinalFailure({ batchId }, error, ctx) {
    await failExpansion(ctx, ctx.em, batchId, error);
  },
});
