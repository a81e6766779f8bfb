import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { Upload } from '../entities/Upload.js';
import type { JobDefinition } from '../jobs/define.js';
import { enqueue } from '../jobs/enqueue.js';
import { indexJob } from '../jobs/handlers/index.js';
import { ingestJob } from '../jobs/handlers/ingest.js';
import { snapshotJob } from '../jobs/handlers/snapshot.js';
import { validateJob } from '../jobs/handlers/validate.js';
import type { AppContext } from './context.js';

export interface ReconcileReport {
  examined: number;
  reenqueued: { uploadId: string; job: string }[];
  /** Uploads whose last job had failed for good while Postgres still called them unfinished. */
  finalised: string[];
}

/** The job an unfinished upload needs next, read from Postgres alone. */
function nextStep(upload: Upload): { definition: JobDefinition<never>; data: Record<string, string> } | undefined {
  const data = { uploadId: upload.id, ownerId: upload.owner };
  if (upload.state === 'received') return { definition: ingestJob as JobDefinition<never>, data };
  if (upload.state === 'processing') return { definition: (upload.summary ? snapshotJob : validateJob) as JobDefinition<never>, data };
  if (upload.state === 'stored' && !upload.indexedAt) {
    return { definition: indexJob as JobDefinition<never>, data: { structureId: upload.structureId, ownerId: upload.owner, uploadId: upload.id } };
  }
  return undefined;
}

/**
 * Postgres is the truth: every upload it calls unfinished must have its next job in Redis.
 * Re-adds the missing ones under their deterministic ids (a no-op for jobs that exist), so an
 * accepted upload survives a Redis restart without persistence or a crash between two steps.
 */
export async function reconcileUploads(ctx: AppContext & { em: EntityManager }, olderThanMs: number): Promise<ReconcileReport> {
  const cutoff = new Date(Date.now() - olderThanMs);
  const uploads = await ctx.em.find(
    Upload,
    { $or: [{ state: { $in: ['received', 'processing'] } }, { state: 'stored', indexedAt: null }], updatedAt: { $lte: cutoff } },
    { orderBy: { createdAt: 'asc' }, limit: 10_000 },
  );
  const report: ReconcileReport = { examined: uploads.length, reenqueued: [], finalised: [] };
  for (const upload of uploads) {
    const step = nextStep(upload);
    if (!step) continue;
    const jobId = step.definition.jobId(step.data as never);
    const existing: Job | undefined = await ctx.queues[step.definition.queue].getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === 'failed' && existing.attemptsMade >= (existing.opts.attempts ?? 1)) {
        await step.definition.onFinalFailure?.(step.data as never, new Error(existing.failedReason || 'the job failed'), {
          ...ctx,
          em: ctx.em.fork(),
        } as never);
        report.finalised.push(upload.id);
      }
      continue;
    }
    await enqueue(ctx.queues, step.definition, step.data as never);
    report.reenqueued.push({ uploadId: upload.id, job: jobId });
  }
  if (report.reenqueued.length || report.finalised.length) ctx.log.warn(report, 'reconcile re-enqueued unfinished uploads');
  return report;
}
