import type { Job } from 'bullmq';
import { ExportArchive } from '../../entities/ExportArchive.js';
import { isInfrastructureError } from '../../lib/infrastructure.js';
import type { JobContract } from '../../queue/contract.js';
import { enqueue, enqueueMany } from '../../queue/enqueue.js';
import { exportJob } from '../../queue/jobs.js';
import { failExportJob } from '../exports/exports.js';
import { importsReconciler } from '../imports/reconcile.js';
import { uploadsReconciler } from '../upload/reconcile.js';
import type { ReconcileCandidate, ReconcileContext, ReconcileReport, Reconciler } from './reconciler.js';
import { reopenReconciler } from './reopen.js';
import { requestsReconciler } from './workRequests.js';

export type { ReconcileCandidate, ReconcileContext, ReconcileReport, Reconciler } from './reconciler.js';
export { uploadsReconciler };

/** Exports asked for (pending) or being written (running) whose job Redis may have lost. */
export const exportsReconciler: Reconciler = {
  name: 'exports',
  async find(ctx, cutoff) {
    const rows = await ctx.em.find(
      ExportArchive,
      { state: { $in: ['pending', 'running'] }, updatedAt: { $lte: cutoff } },
      { orderBy: { createdAt: 'asc' }, limit: 10_000, fields: ['id', 'owner'] },
    );
    return rows.map((row) => ({ subject: row.id, contract: exportJob as JobContract<never>, data: { exportId: row.id, ownerId: row.owner } }));
  },
  async finalise(ctx, candidate, error) {
    await failExportJob(ctx.em, candidate.subject, error);
  },
};

/**
 * Every kind of work reconcile looks after: work failed for the infrastructure's sake (opened
 * again first, so the others move it on in the same pass), imports (next: one flow each sets the
 * most work going), uploads, exports, and the conversions and diffs a client still waits for.
 */
export const RECONCILERS: Reconciler[] = [reopenReconciler, importsReconciler, uploadsReconciler, exportsReconciler, requestsReconciler];

/**
 * Postgres is the truth: everything it calls unfinished must have its next job in Redis. Re-adds
 * the missing ones under their deterministic ids (a no-op for jobs that exist), so accepted work
 * survives a Redis restart without persistence or a crash between two steps. A job that failed
 * for good is handed to the reconciler's finalise, which records the failure in Postgres.
 */
export async function reconcile(ctx: ReconcileContext, reconciler: Reconciler, olderThanMs: number): Promise<ReconcileReport> {
  if (reconciler.repair) {
    const repaired = await reconciler.repair(ctx, new Date(Date.now() - olderThanMs));
    if (repaired.reenqueued.length || repaired.finalised.length)
      ctx.log.warn({ reconciler: reconciler.name, ...repaired }, `reconcile re-enqueued unfinished ${reconciler.name}`);
    return repaired;
  }
  const candidates = await reconciler.find(ctx, new Date(Date.now() - olderThanMs));
  const report: ReconcileReport = { examined: candidates.length, reenqueued: [], finalised: [] };
  // One round trip tells which jobs Redis holds: after a loss most are missing, and are added in bulk.
  const held = await heldJobs(ctx, candidates);
  const missing: ReconcileCandidate[] = [];
  for (const [i, candidate] of candidates.entries()) {
    const { contract, data } = candidate;
    const jobId = contract.jobId(data as never);
    const existing: Job | undefined = held[i] ? await ctx.queues[contract.queue].getJob(jobId) : undefined;
    if (!existing) {
      missing.push(candidate);
      continue;
    }
    const state = await existing.getState();
    if (state === 'failed' && isInfrastructureError(existing.failedReason ?? '')) {
      // Given up for the infrastructure's sake (an outage, a stall limit): not the work's fault, so it starts again.
      await existing.remove();
      await enqueue(ctx.queues, contract, data as never);
      report.reenqueued.push({ subject: candidate.subject, job: jobId });
      continue;
    }
    if (state === 'failed' && existing.attemptsMade >= (existing.opts.attempts ?? 1)) {
      await reconciler.finalise?.({ ...ctx, em: ctx.em.fork() }, candidate, new Error(existing.failedReason || 'the job failed'));
      report.finalised.push(candidate.subject);
    }
  }
  const added = await enqueueMany(ctx.queues, missing);
  for (const [i, candidate] of missing.entries()) report.reenqueued.push({ subject: candidate.subject, job: added[i] as string });
  if (report.reenqueued.length || report.finalised.length)
    ctx.log.warn({ reconciler: reconciler.name, ...report }, `reconcile re-enqueued unfinished ${reconciler.name}`);
  return report;
}

/** Whether Redis holds each candidate's job (its hash exists), in one pipelined round trip. */
async function heldJobs(ctx: ReconcileContext, candidates: readonly ReconcileCandidate[]): Promise<boolean[]> {
  if (candidates.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const { contract, data } of candidates) pipeline.exists(ctx.queues[contract.queue].toKey(contract.jobId(data as never)));
  const results = (await pipeline.exec()) as [Error | null, number][];
  return results.map(([error, count]) => {
    if (error) throw error;
    return count > 0;
  });
}

export function reconcileUploads(ctx: ReconcileContext, olderThanMs: number): Promise<ReconcileReport> {
  return reconcile(ctx, uploadsReconciler, olderThanMs);
}

/** Runs every reconciler; one failing does not stop the others. */
export async function reconcileAll(ctx: ReconcileContext, olderThanMs: number): Promise<Record<string, ReconcileReport | { error: string }>> {
  const reports: Record<string, ReconcileReport | { error: string }> = {};
  for (const reconciler of RECONCILERS) {
    try {
      reports[reconciler.name] = await reconcile({ ...ctx, em: ctx.em.fork() }, reconciler, olderThanMs);
    } catch (error) {
      ctx.log.error({ err: error, reconciler: reconciler.name }, 'reconcile failed');
      reports[reconciler.name] = { error: (error as Error).message };
    }
  }
  return reports;
}
