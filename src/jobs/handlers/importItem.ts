import { ImportItem } from '../../entities/ImportItem.js';
import { Upload } from '../../entities/Upload.js';
import { importItemJob } from '../../queue/jobs.js';
import { endItem, reportProgress, resetBatchReservation } from '../../services/imports/batches.js';
import { processImportItem } from '../../services/imports/process.js';
import { endUpload } from '../../services/upload/uploads.js';
import { handleJob, type JobContext } from '../define.js';

/** A child of the batch job: one file of an import through the upload pipeline, inline (or one restored structure's versions). */
export const importItemHandler = handleJob(importItemJob, {
  async handle(input, ctx) {
    const state = await processImportItem(ctx, input);
    await reportProgress(ctx, ctx.em.fork(), input.batchId);
    return { state };
  },
  async onFinalFailure({ batchId, itemId }, error, ctx) {
    await failItem(ctx, batchId, itemId, error.message);
  },
});

/** An item whose job failed for good: failed with the reason, its upload ended, nothing left held. */
export async function failItem(ctx: Omit<JobContext, 'job'>, batchId: string, itemId: string, reason: string) {
  const item = await ctx.em.fork().findOne(ImportItem, { id: itemId });
  if (!item) return;
  const message = `molvault could not process this file: ${reason}`;
  if (item.upload) {
    const upload = await ctx.em.fork().findOne(Upload, { id: item.upload });
    if (upload) await endUpload(ctx.em.fork(), ctx, upload.id, 'failed', { status: 500, code: 'import_failed', message });
  }
  await ctx.em.fork().transactional(async (tx) => {
    if (await endItem(tx, itemId, 'failed', { error: { code: 'import_failed', message } })) {
      const [batch] = await tx.execute<{ owner_id: string }[]>('select owner_id from import_batches where id = ?', [batchId]);
      if (batch) await resetBatchReservation(tx, batch.owner_id, batchId);
    }
  });
  await ctx.staging.remove(itemId);
}
