import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { sqlArray } from '../../db/arrays.js';
import { ExportArchive } from '../../entities/ExportArchive.js';
import { Upload } from '../../entities/Upload.js';
import type { JobDefinition } from '../../jobs/define.js';
import { enqueue } from '../../jobs/enqueue.js';
import { exportJob } from '../../jobs/handlers/export.js';
import { ingestJob } from '../../jobs/handlers/ingest.js';
import { indexJob } from '../../jobs/handlers/searchIndex.js';
import { snapshotJob } from '../../jobs/handlers/snapshot.js';
import { validateJob } from '../../jobs/handlers/validate.js';
import type { AppContext } from '../../runtime/context.js';
import { importsReconciler } from '../imports/reconcile.js';

type ReconcileContext = AppContext & { em: EntityManager };

/** Something Postgres calls unfinished, and the job (deterministic id) that moves it on. */
export interface ReconcileCandidate {
  /** What is unfinished, e.g. an upload id. */
  subject: string;
  definition: JobDefinition<never>;
  data: Record<string, unknown>;
}

/**
 * One kind of unfinished work: uploads today; conversions and imports add theirs to RECONCILERS.
 * `find` reads Postgres only and returns what was last touched before `cutoff`.
 */
export interface Reconciler {
  name: string;
  find(ctx: ReconcileContext, cutoff: Date): Promise<ReconcileCandidate[]>;
  /** Work whose jobs are not one job per subject (a flow) repairs itself instead of returning candidates. */
  repair?(ctx: ReconcileContext, cutoff: Date): Promise<ReconcileReport>;
}

export interface ReconcileReport {
  examined: number;
  reenqueued: { subject: string; job: string }[];
  /** Work whose last job had failed for good while Postgres still called it unfinished. */
  finalised: string[];
}

/** The job an unfinished upload needs next, read from Postgres alone. */
export function nextUploadStep(upload: Upload): { definition: JobDefinition<never>; data: Record<string, string> } | undefined {
  const data = { uploadId: upload.id, ownerId: upload.owner };
  if (upload.state === 'received') return { definition: ingestJob as JobDefinition<never>, data };
  if (upload.state === 'processing') return { definition: (upload.summary ? snapshotJob : validateJob) as JobDefinition<never>, data };
  if (upload.state === 'stored' && !upload.indexedAt) {
    return { definition: indexJob as JobDefinition<never>, data: { structureId: upload.structureId, ownerId: upload.owner, uploadId: upload.id } };
  }
  return undefined;
}

export const uploadsReconciler: Reconciler = {
  name: 'uploads',
  async find(ctx, cutoff) {
    const uploads = await ctx.em.find(
      Upload,
      { $or: [{ state: { $in: ['received', 'processing'] } }, { state: 'stored', indexedAt: null }], updatedAt: { $lte: cutoff } },
      { orderBy: { createdAt: 'asc' }, limit: 10_000 },
    );
    // The uploads of import items run inside their item's job, which the imports reconciler looks after.
    const imported = new Set(
      uploads.length === 0
        ? []
        : (await ctx.em.execute<{ id: string }[]>('select id from import_items where id = any(?::uuid[])', [sqlArray(uploads.map((u) => u.id))])).map(
            (row) => row.id,
          ),
    );
    return uploads.flatMap((upload) => {
      // Stored but not yet searchable is the index job's business, whoever made the upload.
      if (imported.has(upload.id) && upload.state !== 'stored') return [];
      const step = nextUploadStep(upload);
      return step ? [{ subject: upload.id, ...step }] : [];
    });
  },
};

/** Exports asked for (pending) or being written (running) whose job Redis may have lost. */
export const exportsReconciler: Reconciler = {
  name: 'exports',
  async find(ctx, cutoff) {
    const rows = await ctx.em.find(
      ExportArchive,
      { state: { $in: ['pending', 'running'] }, updatedAt: { $lte: cutoff } },
      { orderBy: { createdAt: 'asc' }, limit: 10_000, fields: ['id', 'owner'] },
    );
    return rows.map((row) => ({
      subject: row.id,
      definition: exportJob as JobDefinition<never>,
      data: { exportId: row.id, ownerId: row.owner },
    }));
  },
};

/** Every kind of work reconcile looks after. Conversions and imports plug in here, one line each. */
export const RECONCILERS: Reconciler[] = [uploadsReconciler, exportsReconciler, importsReconciler];

/**
 * Postgres is the truth: everything it calls unfinished must have its next job in Redis. Re-adds
 * the missing ones under their deterministic ids (a no-op for jobs that exist), so accepted work
 * survives a Redis restart without persistence or a crash between two steps. A job that failed
 * for good is handed to its definition's onFinalFailure, which records the failure in Postgres.
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
  for (const candidate of candidates) {
    const { definition, data } = candidate;
    const jobId = definition.jobId(data as never);
    const existing: Job | undefined = await ctx.queues[definition.queue].getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === 'failed' && existing.attemptsMade >= (existing.opts.attempts ?? 1)) {
        await definition.onFinalFailure?.(data as never, new Error(existing.failedReason || 'the job failed'), { ...ctx, em: ctx.em.fork() } as never);
        report.finalised.push(candidate.subject);
      }
      continue;
    }
    await enqueue(ctx.queues, definition, data as never);
    report.reenqueued.push({ subject: candidate.subject, job: jobId });
  }
  if (report.reenqueued.length || report.finalised.length)
    ctx.log.warn({ reconciler: reconciler.name, ...report }, `reconcile re-enqueued unfinished ${reconciler.name}`);
  return report;
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
