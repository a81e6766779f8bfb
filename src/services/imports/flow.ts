import type { EntityManager } from '@mikro-orm/postgresql';
import { FlowProducer, type JobsOptions } from 'bullmq';
import type { ImportBatch } from '../../entities/ImportBatch.js';
import { InfrastructureError } from '../../lib/infrastructure.js';
import type { JobContract } from '../../queue/contract.js';
import { batchJobId, chunkJobId, expandJobId, importBatchJob, importChunkJob, importExpandJob, importItemJob, itemJobId } from '../../queue/jobs.js';
import { DEFAULT_JOB_OPTIONS } from '../../queue/queues.js';
import type { AppContext } from '../../runtime/context.js';
import { IMPORT_CHUNK_SIZE } from './chunk.js';

/** A child of the batch job: one item (or one restored structure's versions), or the archive's expansion. */
export interface BatchChild {
  contract: JobContract<never>;
  jobId: string;
  data: { batchId: string; ownerId: string; itemId?: string; chunk?: number };
}

/**
 * A failed child (after its retries) does not hold the batch back: the batch job still runs and
 * counts it. Children carry a priority, and BullMQ runs jobs without one first: a single upload
 * someone is waiting for is not queued behind the thousands of files of an import.
 */
const CHILD_OPTIONS: JobsOptions = { ...DEFAULT_JOB_OPTIONS, ignoreDependencyOnFailure: true, priority: 10 };
const ADD_CHUNK = 500;
const child = (contract: JobContract<never> | JobContract<unknown>) => contract as JobContract<never>;

const producers = new WeakMap<object, FlowProducer>();

/** One FlowProducer per process, on the context's Redis connection (closed with it). */
function flowProducer(ctx: AppContext): FlowProducer {
  let producer = producers.get(ctx.redis);
  if (!producer) {
    // A new BullMQ client waits for its connection to be ready however long Redis is away, and the
    // request with it: refuse now instead (the batch is in Postgres; the import reconciler adds it).
    if (ctx.redis.status !== 'ready') throw new InfrastructureError('redis', new Error(`Redis is not connected (${ctx.redis.status})`));
    producer = new FlowProducer({ connection: ctx.redis, prefix: ctx.config.queuePrefix });
    producer.on('error', (error) => ctx.log.warn({ err: error }, 'flow producer error'));
    producers.set(ctx.redis, producer);
  }
  return producer;
}

/**
 * The jobs Postgres says the batch still needs: the expansion while an archive is unpacked, else
 * one job per chunk of plain files not yet ended, one per fetched PDB entry, and one per restored
 * structure (its versions must be stored in order, by the job of its first item).
 */
export async function expectedChildren(em: EntityManager, batch: Pick<ImportBatch, 'id' | 'owner' | 'state' | 'source'>): Promise<BatchChild[]> {
  const data = { batchId: batch.id, ownerId: batch.owner };
  if (batch.state === 'expanding') return [{ contract: child(importExpandJob), jobId: expandJobId(batch.id), data }];
  if (batch.state !== 'running') return [];
  const rows = await em.execute<{ id: string; position: number; restore: boolean }[]>(
    `select id, position, restore is not null as restore from (
       select id, position, state, restore,
              first_value(id) over (partition by restore->>'key' order by (restore->>'order')::int, position) as leader,
              bool_or(state in ('pending', 'processing')) over (partition by restore->>'key') as group_open
         from import_items where batch_id = ?) i
      where (restore is null and state in ('pending', 'processing')) or (restore is not null and id = leader and group_open)
      order by position`,
    [batch.id],
  );
  // Plain files go in chunks of consecutive positions (fetched PDB entries one by one, each fetch its own job).
  const children: BatchChild[] = [];
  const chunks = new Set<number>();
  for (const row of rows) {
    if (row.restore || batch.source === 'pdb_ids') {
      children.push({ contract: child(importItemJob), jobId: itemJobId(row.id), data: { ...data, itemId: row.id } });
      continue;
    }
    const chunk = Math.floor(row.position / IMPORT_CHUNK_SIZE);
    if (chunks.has(chunk)) continue;
    chunks.add(chunk);
    children.push({ contract: child(importChunkJob), jobId: chunkJobId(batch.id, chunk), data: { ...data, chunk } });
  }
  return children;
}

/**
 * Adds the batch job with its children as one flow. Every id is deterministic, so adding the flow
 * again (the reconciler after a Redis loss) adds only what is missing: existing jobs are kept and
 * re-attached to the parent, finished ones count as done.
 */
export async function addBatchFlow(ctx: AppContext, batch: Pick<ImportBatch, 'id' | 'owner'>, children: BatchChild[]): Promise<void> {
  await flowProducer(ctx).add({
    name: importBatchJob.name,
    queueName: importBatchJob.queue,
    data: { batchId: batch.id, ownerId: batch.owner },
    opts: { ...DEFAULT_JOB_OPTIONS, jobId: batchJobId(batch.id) },
    children: children.map((child) => ({
      name: child.contract.name,
      queueName: child.contract.queue,
      data: child.data,
      opts: { ...CHILD_OPTIONS, jobId: child.jobId },
    })),
  });
}

/** Adds children to a batch job that exists (waiting for its children): the items an expansion found. */
export async function addBatchChildren(ctx: AppContext, batchId: string, children: BatchChild[]): Promise<void> {
  const parent = { id: batchJobId(batchId), queue: ctx.queues[importBatchJob.queue].qualifiedName };
  for (let start = 0; start < children.length; start += ADD_CHUNK) {
    const slice = children.slice(start, start + ADD_CHUNK);
    for (const queue of new Set(slice.map((child) => child.contract.queue))) {
      await ctx.queues[queue].addBulk(
        slice
          .filter((child) => child.contract.queue === queue)
          .map((child) => ({ name: child.contract.name, data: child.data, opts: { ...CHILD_OPTIONS, jobId: child.jobId, parent } })),
      );
    }
  }
}
