import { ImportBatch } from '../../entities/ImportBatch.js';
import { importBatchJob, itemJobId } from '../../queue/jobs.js';
import { batchCounts, failBatch, progressOf, releaseBatchReservation } from '../../services/imports/batches.js';
import { handleJob } from '../define.js';
import { failItem } from './importItem.js';

/**
 * The parent of an import's flow: runs once every child has ended (a child that failed for good
 * does not block it). Items still unfinished then are the ones whose jobs failed: they are failed
 * with the reason. The counts come from Postgres; the batch is `completed` however many items
 * were refused (`failed` is for a batch that could not be processed at all).
 */
export const importBatchHandler = handleJob(importBatchJob, {
  async handle({ batchId }, ctx) {
    const batch = await ctx.em.findOne(ImportBatch, { id: batchId });
    if (!batch) return { skipped: 'missing' };
    if (batch.state === 'receiving' || batch.state === 'expanding') {
      // The expansion ended without recording items: its job failed for good.
      const failures = Object.values(await ctx.job.getIgnoredChildrenFailures().catch(() => ({})));
      await failBatch(ctx, ctx.em.fork(), batchId, {
        code: 'expand_failed',
        status: 500,
        message: `Unpacking the archive failed${failures[0] ? `: ${failures[0]}` : ''}.`,
      });
    } else if (batch.state === 'running') {
      const failures = await ctx.job.getIgnoredChildrenFailures().catch(() => ({}) as Record<string, string>);
      // Failures are keyed by the child job's Redis key, which ends in its id: `importitem-<item id>`.
      const itemPrefix = itemJobId('');
      const reasons = new Map(Object.entries(failures).map(([key, reason]) => [key.slice(key.lastIndexOf(itemPrefix) + itemPrefix.length), reason]));
      const open = await ctx.em.execute<{ id: string }[]>(`select id from import_items where batch_id = ? and state in ('pending', 'processing')`, [batchId]);
      for (const { id } of open) await failItem(ctx, batchId, id, reasons.get(id) ?? 'its job ended without finishing it');
      await ctx.em.fork().transactional(async (tx) => {
        await tx.execute(`update import_batches set state = 'completed', finished_at = now(), updated_at = now() where id = ? and state = 'running'`, [
          batchId,
        ]);
        await releaseBatchReservation(tx, batch.owner, batchId);
      });
      await ctx.staging.remove(batchId);
    }
    const final = await ctx.em.fork().findOneOrFail(ImportBatch, { id: batchId });
    const counts = (await batchCounts(ctx.em.fork(), [batchId])).get(batchId);
    const progress = counts ? progressOf(counts) : undefined;
    if (progress) await ctx.job.updateProgress(progress);
    ctx.log.info({ batchId, state: final.state, ...progress }, `import ${final.state}`);
    return { state: final.state, ...progress, ...(final.error ? { error: final.error } : {}) };
  },
});
