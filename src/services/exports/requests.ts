import type { EntityManager } from '@mikro-orm/postgresql';
import { type ArchiveKind, ExportArchive, type ExportState } from '../../entities/ExportArchive.js';
import { exportJob, exportJobId } from '../../queue/jobs.js';
import type { QueueSet } from '../../queue/queues.js';
import { startedBy, type Visibility } from '../auth/visibility.js';

/** A page of the caller's exports, newest first (in one state, if given), plus one more row when there is a next page. */
export function listExports(em: EntityManager, visible: Visibility, page: { limit: number; state?: ExportState; before?: { createdAt: Date; id: string } }) {
  // Conditions are and-ed, never spread over one another: the visibility holds its own keys (owner, project).
  const conditions: Record<string, unknown>[] = [startedBy(visible)];
  if (page.state) conditions.push({ state: page.state });
  if (page.before) {
    const at = page.before.createdAt;
    conditions.push({ $or: [{ createdAt: { $lt: at } }, { createdAt: at, id: { $lt: page.before.id } }] });
  }
  const where = { $and: conditions };
  return em.find(ExportArchive, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 });
}

/** Records an export to be written (pending); the export job writes it. */
export async function recordExport(
  em: EntityManager,
  input: Pick<ExportArchive, 'owner' | 'project' | 'selection' | 'format' | 'versions' | 'filename' | 'expiresAt'> & { archive: ArchiveKind },
): Promise<ExportArchive> {
  const row = em.create(ExportArchive, input);
  await em.flush();
  return row;
}

/** The export, read afresh. */
export function findExport(em: EntityManager, exportId: string): Promise<ExportArchive | null> {
  return em.findOne(ExportArchive, { id: exportId });
}

/** The job's progress while an export is under way ({phase, done, total}); nothing once Redis has forgotten it. */
export async function exportProgress(queues: QueueSet, row: Pick<ExportArchive, 'id' | 'state'>): Promise<unknown> {
  if (row.state !== 'pending' && row.state !== 'running') return undefined;
  const job = await queues[exportJob.queue].getJob(exportJobId(row.id)).catch(() => undefined);
  return job?.progress || undefined;
}

/**
 * Drops an export's job if it has not started. A running one finds the row gone when it commits,
 * and its archive goes.
 */
export async function dropPendingExportJob(queues: QueueSet, exportId: string): Promise<void> {
  const job = await queues[exportJob.queue].getJob(exportJobId(exportId)).catch(() => undefined);
  if (job && ['waiting', 'delayed', 'prioritized'].includes(await job.getState())) await job.remove().catch(() => {});
}

/** Export archives per state, with their bytes, counted in Postgres (so across every worker process). */
export function countExportsByState(em: EntityManager): Promise<{ state: string; n: string; bytes: string | null }[]> {
  return em.execute<{ state: string; n: string; bytes: string | null }[]>(
    'select state, count(*) as n, sum(size) as bytes from export_archives group by state',
  );
}
