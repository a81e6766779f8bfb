import type { EntityManager } from '@mikro-orm/postgresql';
import { ImportBatch, type ImportOptions, type ImportSource } from '../../entities/ImportBatch.js';
import type { AppContext } from '../../runtime/context.js';
import { type ItemDraft, insertItems, reportProgress, resetBatchReservation } from './batches.js';
import { addBatchFlow, expectedChildren } from './flow.js';

/** What the API learnt while receiving a batch: where it goes next, and its items (none for an archive, which a worker expands). */
export interface ReceivedBatch {
  state: 'running' | 'expanding';
  source: ImportSource;
  options: ImportOptions;
  items: ItemDraft[];
}

/**
 * The batch is received: its items are recorded and it moves on (running, or expanding for an
 * archive) in one transaction, then its flow is added. If Redis cannot take the flow now, the
 * batch is in Postgres and the import reconciler adds it.
 */
export async function launchBatch(ctx: AppContext, em: EntityManager, batchId: string, ownerId: string, received: ReceivedBatch): Promise<ImportBatch> {
  const batch = await em.transactional(async (tx) => {
    const row = await tx.findOneOrFail(ImportBatch, { id: batchId });
    await insertItems(tx, batchId, received.items);
    row.state = received.state;
    row.source = received.source;
    row.options = received.options;
    await tx.flush();
    if (received.state === 'running') await resetBatchReservation(tx, ownerId, batchId);
    return row;
  });
  try {
    await addBatchFlow(ctx, batch, await expectedChildren(ctx.orm.em.fork(), batch));
    // Counts from the first moment, for whoever follows the batch job's events.
    await reportProgress(ctx, ctx.orm.em.fork(), batchId);
  } catch (error) {
    ctx.log.error({ err: error, batchId }, 'could not add the import flow; the reconcile schedule will');
  }
  return batch;
}
