import { sqlArray } from '../../db/arrays.js';
import { isInfrastructureError } from '../../lib/infrastructure.js';
import { enqueue } from '../../queue/enqueue.js';
import { ingestJob } from '../../queue/jobs.js';
import { resetBatchReservation } from '../imports/batches.js';
import { QuotaExceededError, reserve } from '../quota/quota.js';
import type { ReconcileReport, Reconciler } from './reconciler.js';

/** At most this many failed rows are looked at per pass. */
const REOPEN_LIMIT = 5000;

/**
 * Work that an earlier molvault (or an outage past every retry) marked `failed` although only the
 * infrastructure was sick: Postgres or Redis away, a full disk, a killed worker. A sick system is
 * not a bad file, so such work is opened again and goes through the stages like new, as long as its
 * bytes are still staged (a fetched PDB entry is fetched again). Anything whose bytes are gone
 * stays failed: there is nothing left to retry with.
 */
export const reopenReconciler: Reconciler = {
  name: 'reopened',
  async find() {
    return [];
  },
  async repair(ctx) {
    const report: ReconcileReport = { examined: 0, reenqueued: [], finalised: [] };
    await reopenImportItems(ctx, report);
    await reopenUploads(ctx, report);
    return report;
  },
};

type Ctx = Parameters<Reconciler['find']>[0];

async function reopenImportItems(ctx: Ctx, report: ReconcileReport): Promise<void> {
  const rows = await ctx.em.execute<{ id: string; batch_id: string; owner_id: string; source: string; message: string | null; staged_bundle: string | null }[]>(
    `select i.id, i.batch_id, b.owner_id, b.source, i.error->>'message' as message, i.staged_bundle
       from import_items i join import_batches b on b.id = i.batch_id
      where i.state = 'failed' and i.restore is null and b.state in ('running', 'completed')
      order by i.batch_id, i.position limit ?`,
    [REOPEN_LIMIT],
  );
  const candidates: typeof rows = [];
  for (const row of rows) {
    if (!isInfrastructureError(row.message ?? '')) continue;
    report.examined++;
    // Its bytes staged on their own, or in the bundle of its chunk (services/upload/bundles.ts).
    if (row.source === 'pdb_ids' || (await ctx.staging.exists(row.id)) || (row.staged_bundle && (await ctx.staging.exists(row.staged_bundle))))
      candidates.push(row);
  }
  const byBatch = new Map<string, typeof rows>();
  for (const row of candidates) byBatch.set(row.batch_id, [...(byBatch.get(row.batch_id) ?? []), row]);
  for (const [batchId, items] of byBatch) {
    const ids = items.map((item) => item.id);
    const reopened = await ctx.em.fork().transactional(async (tx) => {
      const [batch] = await tx.execute<{ owner_id: string }[]>('select owner_id from import_batches where id = ? for update', [batchId]);
      if (!batch) return [];
      // The failed upload goes: the item becomes pending again and gets a new one from its chunk, as a new item would.
      await tx.execute(`delete from uploads where id = any(?::uuid[]) and state = 'failed'`, [sqlArray(ids)]);
      const changed = await tx.execute<{ id: string }[]>(
        `update import_items set state = 'pending', error = null, upload_id = null, updated_at = now()
          where id = any(?::uuid[]) and state = 'failed' returning id`,
        [sqlArray(ids)],
      );
      if (changed.length === 0) return [];
      // Back to running, untouched (updated_at kept), so the imports reconciler adds its flow in this same pass.
      await tx.execute(`update import_batches set state = 'running', finished_at = null where id = ?`, [batchId]);
      await reserve(tx, { userId: batch.owner_id, uploadId: batchId, needed: 0 });
      await resetBatchReservation(tx, batch.owner_id, batchId);
      return changed.map((row) => row.id);
    });
    for (const id of reopened) report.reenqueued.push({ subject: id, job: `reopened in import ${batchId}` });
  }
}

async function reopenUploads(ctx: Ctx, report: ReconcileReport): Promise<void> {
  const rows = await ctx.em.execute<{ id: string; owner_id: string; received_bytes: string; message: string | null }[]>(
    `select u.id, u.owner_id, u.received_bytes, u.error->>'message' as message from uploads u
      where u.state = 'failed' and u.blob_sha256 is null and not exists (select 1 from import_items i where i.id = u.id)
      order by u.created_at limit ?`,
    [REOPEN_LIMIT],
  );
  for (const row of rows) {
    if (!isInfrastructureError(row.message ?? '')) continue;
    report.examined++;
    if (!(await ctx.staging.exists(row.id))) continue;
    try {
      const reopened = await ctx.em.fork().transactional(async (tx) => {
        const changed = await tx.execute<{ id: string }[]>(
          `update uploads set state = 'received', error = null, updated_at = now() where id = ? and state = 'failed' returning id`,
          [row.id],
        );
        if (changed.length === 0) return false;
        await reserve(tx, { userId: row.owner_id, uploadId: row.id, needed: Number(row.received_bytes) });
        return true;
      });
      if (!reopened) continue;
    } catch (error) {
      // No room any more: it stays failed with its reason rather than pass the owner's quota.
      if (error instanceof QuotaExceededError) continue;
      throw error;
    }
    // The job that gave up is still in Redis under the same id; it would make the new one a no-op.
    const data = { uploadId: row.id, ownerId: row.owner_id };
    const previous = await ctx.queues[ingestJob.queue].getJob(ingestJob.jobId(data));
    if (previous && ((await previous.isFailed()) || (await previous.isCompleted()))) await previous.remove();
    const job = await enqueue(ctx.queues, ingestJob, data);
    report.reenqueued.push({ subject: row.id, job });
  }
}
