import { ImportBatch } from '../../entities/ImportBatch.js';
import { importExpandJob } from '../../queue/jobs.js';
import { failBatch, reportProgress } from '../../services/imports/batches.js';
import { applyManifest, expandArchive, ImportRefusal, recordExpansion } from '../../services/imports/expand.js';
import { addBatchChildren, expectedChildren } from '../../services/imports/flow.js';
import { handleJob } from '../define.js';

/**
 * A child of the batch job for an archive: unpacks it entry by entry into staging, records an item
 * per entry, then adds one child per item to the batch job. Idempotent: a crash mid-way leaves the
 * batch `expanding` with no items, and the next delivery unpacks again into the same item ids; once
 * the items are recorded, a repeated delivery only re-adds the children (a no-op for existing ones).
 */
export const importExpandHandler = handleJob(importExpandJob, {
  async handle({ batchId }, ctx) {
    let batch = await ctx.em.findOne(ImportBatch, { id: batchId });
    if (!batch) return { skipped: 'missing' };
    if (batch.state === 'expanding') {
      let expansion: Awaited<ReturnType<typeof expandArchive>>;
      try {
        expansion = await expandArchive(ctx, ctx.em, batch);
      } catch (error) {
        if (!(error instanceof ImportRefusal)) throw error;
        await failBatch(ctx, ctx.em.fork(), batchId, error.error);
        return { refused: error.error.code };
      }
      const manifest = applyManifest(batch, expansion);
      await recordExpansion(ctx.em.fork(), batch, expansion, manifest);
      // Unpacked and recorded: the archive itself is no longer needed.
      await ctx.staging.remove(batchId);
      batch = await ctx.em.fork().findOneOrFail(ImportBatch, { id: batchId });
    }
    if (batch.state !== 'running') return { skipped: batch.state };
    const children = await expectedChildren(ctx.em, batch);
    await addBatchChildren(ctx, batchId, children);
    await ctx.job.updateProgress(100);
    await reportProgress(ctx, ctx.em.fork(), batchId);
    return { items: children.length };
  },
  async onFinalFailure({ batchId }, error, ctx) {
    await failBatch(ctx, ctx.em, batchId, { code: 'expand_failed', status: 500, message: `Unpacking the archive failed: ${error.message}` });
  },
});
