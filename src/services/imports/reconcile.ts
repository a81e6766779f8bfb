import type { Redis } from 'ioredis';
import { ImportBatch } from '../../entities/ImportBatch.js';
import { batchJobId, importBatchJob } from '../../queue/jobs.js';
import type { QueueSet } from '../../queue/queues.js';
import type { ReconcileReport, Reconciler } from '../maintenance/reconciler.js';
import { addBatchChildren, addBatchFlow, type BatchChild, expectedChildren } from './flow.js';

/**
 * Imports Postgres calls unfinished (expanding, running) whose jobs Redis does not have: the
 * batch's flow is added again with the same ids (only the children of items not yet ended), or,
 * when the batch job still waits, the children it lost are re-attached to it. A batch job that
 * failed for good is retried: it only counts and closes, and needs Postgres and Redis, not luck.
 */
export const importsReconciler: Reconciler = {
  name: 'imports',
  async find() {
    return [];
  },
  async repair(ctx, cutoff) {
    const report: ReconcileReport = { examined: 0, reenqueued: [], finalised: [] };
    const batches = await ctx.em.find(
      ImportBatch,
      { state: { $in: ['expanding', 'running'] }, updatedAt: { $lte: cutoff } },
      { orderBy: { createdAt: 'asc' }, limit: 1000 },
    );
    for (const batch of batches) {
      report.examined++;
      const parentId = batchJobId(batch.id);
      const children = await expectedChildren(ctx.em, batch);
      const parent = await ctx.queues[importBatchJob.queue].getJob(parentId);
      const state = parent ? await parent.getState() : 'missing';
      if (!parent || state === 'missing' || state === 'unknown') {
        await addBatchFlow(ctx, batch, children);
        report.reenqueued.push({ subject: batch.id, job: parentId });
      } else if (state === 'failed') {
        await parent.retry('failed');
        report.reenqueued.push({ subject: batch.id, job: parentId });
      } else if (state === 'completed') {
        // Finished in Redis but not in Postgres (Redis restored from an older point): run it again.
        await parent.remove();
        await addBatchFlow(ctx, batch, children);
        report.reenqueued.push({ subject: batch.id, job: parentId });
      } else if (state === 'waiting-children') {
        const missing = await missingJobs(ctx, children);
        if (missing.length > 0) {
          await addBatchChildren(ctx, batch.id, missing);
          for (const child of missing) report.reenqueued.push({ subject: child.data.itemId ?? batch.id, job: child.jobId });
        }
      }
    }
    return report;
  },
};

/** The children whose jobs Redis does not hold, checked in one round trip. */
async function missingJobs(ctx: { redis: Redis; queues: QueueSet }, children: BatchChild[]): Promise<BatchChild[]> {
  if (children.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const child of children) pipeline.exists(ctx.queues[child.contract.queue].toKey(child.jobId));
  const results = (await pipeline.exec()) as [Error | null, number][];
  return children.filter((_, i) => results[i]?.[1] === 0);
}
