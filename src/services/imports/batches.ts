import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { ImportBatch, type ImportError, type ImportSource } from '../../entities/ImportBatch.js';
import type { ImportItemError, ImportItemState, ImportRestore } from '../../entities/ImportItem.js';
import { batchJobId, importBatchJob } from '../../queue/jobs.js';
import type { AppContext } from '../../runtime/context.js';
import { lockQuota } from '../quota/usage.js';
import type { StagedCompression } from './stage.js';

/** An item as it is first recorded (by the API, or by the expansion of an archive). */
export interface ItemDraft {
  position: number;
  id: string;
  name: string;
  state: Extract<ImportItemState, 'pending' | 'skipped' | 'rejected'>;
  error?: ImportItemError;
  size?: number;
  receivedSha256?: string;
  /** What the staged bytes' first bytes showed (stageStream); unknown for items staged later. */
  receivedCompression?: StagedCompression;
  /** Staged inside this bundle at this offset (services/upload/bundles.ts). */
  stagedBundle?: string;
  stagedOffset?: number;
  restore?: ImportRestore;
}

/** Records a batch whose files are still arriving (`receiving`); returns its id. */
export async function createBatch(em: EntityManager, batch: { ownerId: string; projectId: string; source: ImportSource }): Promise<string> {
  const id = randomUUID();
  em.create(ImportBatch, {
    id,
    owner: batch.ownerId,
    project: batch.projectId,
    source: batch.source,
    state: 'receiving',
    error: null,
    options: {},
    jobId: batchJobId(id),
    finishedAt: null,
  });
  await em.flush();
  return id;
}

/** Touches a batch still receiving, so cleanup never takes a long request for an abandoned one. */
export async function touchBatch(em: EntityManager, batchId: string): Promise<void> {
  await em.execute('update import_batches set updated_at = now() where id = ?', [batchId]);
}

const INSERT_CHUNK = 1000;

/** Records items in chunks of one statement each; call inside the transaction that moves the batch on. */
export async function insertItems(tx: EntityManager, batchId: string, drafts: ItemDraft[]): Promise<void> {
  for (let start = 0; start < drafts.length; start += INSERT_CHUNK) {
    const rows = drafts.slice(start, start + INSERT_CHUNK).map((d) => ({
      id: d.id,
      position: d.position,
      name: d.name,
      state: d.state,
      error: d.error ?? null,
      size: d.size ?? null,
      received_sha256: d.receivedSha256 ?? null,
      received_compression: d.receivedCompression ?? null,
      staged_bundle: d.stagedBundle ?? null,
      staged_offset: d.stagedOffset ?? null,
      restore: d.restore ?? null,
    }));
    await tx.execute(
      `insert into import_items (id, batch_id, position, name, state, error, size, received_sha256, received_compression, staged_bundle, staged_offset,
                                 restore, created_at, updated_at)
       select x.id, ?, x.position, x.name, x.state, x.error, x.size, x.received_sha256, x.received_compression, x.staged_bundle, x.staged_offset,
              x.restore, now(), now()
         from jsonb_to_recordset(?::jsonb) as x(id uuid, position int, name text, state text, error jsonb, size bigint, received_sha256 text,
                                                 received_compression text, staged_bundle uuid, staged_offset bigint, restore jsonb)
       on conflict (batch_id, position) do nothing`,
      [batchId, JSON.stringify(rows)],
    );
  }
}

export interface BatchCounts {
  total: number;
  /** pending or processing */
  pending: number;
  succeeded: number;
  /** rejected (the file's fault) plus failed (ours) */
  failed: number;
  rejected: number;
  skipped: number;
}

const emptyCounts = (): BatchCounts => ({ total: 0, pending: 0, succeeded: 0, failed: 0, rejected: 0, skipped: 0 });

/** Counts of items by outcome, for many batches in one grouped query (the items are the truth). */
export async function batchCounts(em: EntityManager, batchIds: string[]): Promise<Map<string, BatchCounts>> {
  const result = new Map<string, BatchCounts>(batchIds.map((id) => [id, emptyCounts()]));
  if (batchIds.length === 0) return result;
  const rows = await em.execute<{ batch_id: string; state: ImportItemState; n: string }[]>(
    `select batch_id, state, count(*) as n from import_items where batch_id = any(?::uuid[]) group by batch_id, state`,
    [sqlArray(batchIds)],
  );
  for (const row of rows) {
    const counts = result.get(row.batch_id);
    if (!counts) continue;
    const n = Number(row.n);
    counts.total += n;
    if (row.state === 'pending' || row.state === 'processing') counts.pending += n;
    else if (row.state === 'stored') counts.succeeded += n;
    else if (row.state === 'skipped') counts.skipped += n;
    else {
      counts.failed += n;
      if (row.state === 'rejected') counts.rejected += n;
    }
  }
  return result;
}

export async function countsOf(em: EntityManager, batchId: string): Promise<BatchCounts> {
  return (await batchCounts(em, [batchId])).get(batchId) ?? emptyCounts();
}

/** What the batch job reports as progress (and /v1/jobs/batch-<id>/events streams). */
export function progressOf(counts: BatchCounts) {
  return { total: counts.total, done: counts.total - counts.pending, succeeded: counts.succeeded, failed: counts.failed, skipped: counts.skipped };
}

const PROGRESS_EVERY_MS = 250;
const lastReported = new Map<string, number>();

/**
 * Updates the batch job's progress from Postgres, at most every 250 ms per batch and process (a
 * count over the batch's items per file would cost more than the file); the batch job reports the
 * final figures itself. A missing job (Redis lost it) is left to the reconciler.
 */
export async function reportProgress(ctx: AppContext, em: EntityManager, batchId: string): Promise<void> {
  const now = Date.now();
  if (now - (lastReported.get(batchId) ?? 0) < PROGRESS_EVERY_MS) return;
  lastReported.set(batchId, now);
  if (lastReported.size > 1000) for (const [id, at] of lastReported) if (now - at > 60_000) lastReported.delete(id);
  const job = await ctx.queues[importBatchJob.queue].getJob(batchJobId(batchId));
  if (!job) return;
  await job.updateProgress(progressOf(await countsOf(em, batchId)));
}

/**
 * The batch's own quota reservation (keyed by the batch id) covers the staged bytes of its items
 * that have not become uploads yet; an item moves its share to a reservation of its own when it
 * becomes an upload. Set, not decremented, so a repeated delivery cannot count an item twice.
 */
export async function resetBatchReservation(tx: EntityManager, ownerId: string, batchId: string): Promise<void> {
  await lockQuota(tx, ownerId);
  await tx.execute(
    `update quota_reservations
        set bytes = (select coalesce(sum(size), 0) from import_items where batch_id = ? and state = 'pending'), updated_at = now()
      where upload_id = ?`,
    [batchId, batchId],
  );
}

export async function releaseBatchReservation(tx: EntityManager, ownerId: string, batchId: string): Promise<void> {
  await lockQuota(tx, ownerId);
  await tx.execute('delete from quota_reservations where upload_id = ?', [batchId]);
}

/**
 * Fails a batch as a whole (a refused archive, quota, a lost staging file): its items and their
 * staged files go, and its reservation; the batch row stays with the reason. Only before its items
 * are processed (receiving, expanding): once running, a batch always completes, bad files or not.
 */
export async function failBatch(ctx: AppContext, em: EntityManager, batchId: string, error: ImportError, stagedIds: string[] = []): Promise<boolean> {
  const items = await em.execute<{ id: string }[]>(
    'select id from import_items where batch_id = ? union select staged_bundle from import_items where batch_id = ? and staged_bundle is not null',
    [batchId, batchId],
  );
  const failed = await em.transactional(async (tx) => {
    const [batch] = await tx.execute<{ owner_id: string; state: string }[]>('select owner_id, state from import_batches where id = ? for update', [batchId]);
    if (!batch || !(batch.state === 'receiving' || batch.state === 'expanding')) return false;
    // Removed before the batch reads as failed, so whoever sees it failed finds nothing left.
    await removeStaged(ctx, [...stagedIds, ...items.map((i) => i.id), batchId]);
    await tx.execute(`update import_batches set state = 'failed', error = ?::jsonb, finished_at = now(), updated_at = now() where id = ?`, [
      JSON.stringify(error),
      batchId,
    ]);
    await tx.execute('delete from import_items where batch_id = ?', [batchId]);
    await releaseBatchReservation(tx, batch.owner_id, batchId);
    return true;
  });
  return failed;
}

async function removeStaged(ctx: AppContext, ids: string[]): Promise<void> {
  await ctx.staging.removeMany([...new Set(ids)]);
}

/**
 * Removes a batch whose request was refused before it was accepted (still receiving): its items,
 * staged files and reservation, and the row itself, so a refused request leaves nothing. A batch
 * that has moved on (accepted) is left alone; returns whether this call removed it.
 */
export async function discardRefusedBatch(ctx: AppContext, em: EntityManager, batchId: string, stagedIds: string[] = []): Promise<boolean> {
  const items = await em.execute<{ id: string }[]>(
    'select id from import_items where batch_id = ? union select staged_bundle from import_items where batch_id = ? and staged_bundle is not null',
    [batchId, batchId],
  );
  const removed = await em.transactional(async (tx) => {
    const [batch] = await tx.execute<{ owner_id: string; state: string }[]>('select owner_id, state from import_batches where id = ? for update', [batchId]);
    if (!batch || batch.state !== 'receiving') return false;
    await removeStaged(ctx, [...stagedIds, ...items.map((i) => i.id), batchId]);
    await tx.execute('delete from import_items where batch_id = ?', [batchId]);
    await releaseBatchReservation(tx, batch.owner_id, batchId);
    await tx.execute('delete from import_batches where id = ?', [batchId]);
    return true;
  });
  return removed;
}

/** Ends an item (conditionally: a repeated delivery finds it ended). Returns whether this call ended it. */
export async function endItem(
  tx: EntityManager,
  itemId: string,
  state: Extract<ImportItemState, 'stored' | 'rejected' | 'failed' | 'skipped'>,
  fields: { error?: ImportItemError | null; structureId?: string | null; sha256?: string | null } = {},
): Promise<boolean> {
  const [row] = await tx.execute<{ n: string }[]>(
    `with changed as (
       update import_items
          set state = ?, error = ?::jsonb, structure_id = coalesce(?::uuid, structure_id), sha256 = coalesce(?, sha256), updated_at = now()
        where id = ? and state in ('pending', 'processing')
       returning 1)
     select count(*) as n from changed`,
    [state, fields.error ? JSON.stringify(fields.error) : null, fields.structureId ?? null, fields.sha256 ?? null, itemId],
  );
  return Number(row?.n ?? 0) > 0;
}
