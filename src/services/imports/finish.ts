import { ImportBatch } from '../../entities/ImportBatch.js';
import { ImportItem } from '../../entities/ImportItem.js';
import { Upload } from '../../entities/Upload.js';
import { isInfrastructureError } from '../../lib/infrastructure.js';
import { chunkJobId, itemJobId } from '../../queue/jobs.js';
import type { WorkContext } from '../../runtime/context.js';
import { enqueueIndexAll } from '../search/indexing.js';
import { endUpload } from '../upload/uploads.js';
import { batchCounts, endItem, failBatch, progressOf, releaseBatchReservation, resetBatchReservation } from './batches.js';
import { IMPORT_CHUNK_SIZE } from './chunk.js';
import { restoreRelationships } from './restoreHistory.js';

type FinishContext = Omit<WorkContext, 'cpu' | 'job'>;

/** An item whose job failed for good: failed with the reason, its upload ended, nothing left held. */
export async function failImportItem(ctx: FinishContext, batchId: string, itemId: string, reason: string): Promise<void> {
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
  // Failed for the infrastructure's sake: the staged bytes stay, and reconcile opens the item again (maintenance/reopen.ts).
  if (!isInfrastructureError(reason)) await ctx.staging.remove(itemId);
}

/** A chunk whose job failed for good: its items still open fail with the reason. */
export async function failImportChunk(ctx: FinishContext, batchId: string, chunk: number, reason: string): Promise<void> {
  const open = await ctx.em.execute<{ id: string }[]>(
    `select id from import_items where batch_id = ? and position >= ? and position < ? and restore is null and state in ('pending', 'processing')`,
    [batchId, chunk * IMPORT_CHUNK_SIZE, (chunk + 1) * IMPORT_CHUNK_SIZE],
  );
  for (const { id } of open) await failImportItem(ctx, batchId, id, reason);
}

/**
 * The end of an import, once every child job has ended (a child that failed for good does not
 * block it). Items still unfinished then are the ones whose jobs failed: they are failed with the
 * reason (`failures`: the failed children's reasons, keyed by their Redis keys). The batch is
 * `completed` however many items were refused (`failed` is for a batch that could not be processed
 * at all: an expansion that ended without recording items). Returns the batch's state and counts.
 */
export async function closeImport(ctx: FinishContext, batchId: string, failures: Record<string, string>) {
  const batch = await ctx.em.findOne(ImportBatch, { id: batchId });
  if (!batch) return undefined;
  if (batch.state === 'receiving' || batch.state === 'expanding') {
    const reason = Object.values(failures)[0];
    // Unpacking stopped by an outage (or for no reason known): the archive is still staged, and
    // reconcile adds the expansion again once this batch job has ended.
    if (batch.state === 'expanding' && (!reason || isInfrastructureError(reason))) return await leftOpen(ctx, batchId);
    await failBatch(ctx, ctx.em.fork(), batchId, {
      code: 'expand_failed',
      status: 500,
      message: `Unpacking the archive failed${reason ? `: ${reason}` : ''}.`,
    });
  } else if (batch.state === 'running') {
    const reasons = childFailureReasons(batchId, failures);
    const open = await ctx.em.execute<{ id: string; position: number }[]>(
      `select id, position from import_items where batch_id = ? and state in ('pending', 'processing')`,
      [batchId],
    );
    // Only a fault of the work itself fails an item. An item whose job gave up on the infrastructure
    // (an outage, a stall limit), or ended with no reason at all, stays open: the batch stays
    // running, and reconcile adds its flow again with just those items.
    let waiting = 0;
    for (const { id, position } of open) {
      const reason = reasons.items.get(id) ?? reasons.chunks.get(Math.floor(position / IMPORT_CHUNK_SIZE));
      if (reason && !isInfrastructureError(reason)) await failImportItem(ctx, batchId, id, reason);
      else waiting++;
    }
    if (waiting > 0) return await leftOpen(ctx, batchId);
    // An export's relationships, once every structure they join is restored.
    if (batch.options.manifest) await enqueueIndexAll(ctx.queues, await restoreRelationships(ctx.em.fork(), batchId));
    // Whoever sees the import completed finds nothing of it staged.
    await ctx.staging.remove(batchId);
    await ctx.em.fork().transactional(async (tx) => {
      await tx.execute(`update import_batches set state = 'completed', finished_at = now(), updated_at = now() where id = ? and state = 'running'`, [batchId]);
      await releaseBatchReservation(tx, batch.owner, batchId);
    });
  }
  const final = await ctx.em.fork().findOneOrFail(ImportBatch, { id: batchId });
  const counts = (await batchCounts(ctx.em.fork(), [batchId])).get(batchId);
  return { state: final.state, error: final.error, progress: counts ? progressOf(counts) : undefined };
}

/**
 * The failed children's reasons by item and by chunk. A failed child's Redis key ends in its job
 * id: `importitem-<item id>` or `importchunk-<batch id>-c<chunk>`.
 */
function childFailureReasons(batchId: string, failures: Record<string, string>) {
  const itemPrefix = itemJobId('');
  const chunkPrefix = chunkJobId(batchId, 0).slice(0, -1);
  const items = new Map<string, string>();
  const chunks = new Map<number, string>();
  for (const [key, reason] of Object.entries(failures)) {
    const chunkAt = key.lastIndexOf(chunkPrefix);
    if (chunkAt >= 0) chunks.set(Number(key.slice(chunkAt + chunkPrefix.length)), reason);
    else if (key.includes(itemPrefix)) items.set(key.slice(key.lastIndexOf(itemPrefix) + itemPrefix.length), reason);
  }
  return { items, chunks };
}

/** A batch that must wait for its open work: left as it is, for reconcile to pick up. */
async function leftOpen(ctx: FinishContext, batchId: string) {
  const final = await ctx.em.fork().findOneOrFail(ImportBatch, { id: batchId });
  const counts = (await batchCounts(ctx.em.fork(), [batchId])).get(batchId);
  ctx.log.warn({ batchId, state: final.state }, 'import left open: some of its work waits for the infrastructure; reconcile will take it up again');
  return { state: final.state, error: final.error, progress: counts ? progressOf(counts) : undefined };
}
