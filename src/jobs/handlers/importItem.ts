import { importItemJob } from '../../queue/jobs.js';
import { reportProgress } from '../../services/imports/batches.js';
import { failImportItem } from '../../services/imports/finish.js';
import { processImportItem } from '../../services/imports/process.js';
import { handleJob } from '../define.js';

/** A child of the batch job: one file of an import through the upload pipeline, inline (or one restored structure's versions). */
export const importItemHandler = handleJob(importItemJob, {
  async handle(input, ctx) {
    const state = await processImportItem(ctx, input);
    await reportProgress(ctx, ctx.em.fork(), input.batchId);
    return { state };
  },
  async onFinalFailure({ batchId, itemId }, error, ctx) {
    await failImportItem(ctx, batchId, itemId, error.message);
  },
});
