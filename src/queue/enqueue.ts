import type { JobsOptions } from 'bullmq';
import type { JobContract } from './contract.js';
import type { QueueSet } from './queues.js';

/** Adds a job under its deterministic id; adding an id that exists is a no-op in BullMQ. */
export async function enqueue<Data>(queues: QueueSet, contract: JobContract<Data>, data: Data, options: JobsOptions = {}) {
  const jobId = contract.jobId(data);
  await queues[contract.queue].add(contract.name, data as object, { ...options, jobId });
  return jobId;
}

/** How many jobs one addBulk call carries. */
const BULK = 500;

/**
 * Adds many jobs, each under its deterministic id (ids that exist are left as they are), in a few
 * round trips per queue instead of one per job: what reconcile re-adds after Redis lost its data.
 */
export async function enqueueMany(queues: QueueSet, jobs: readonly { contract: JobContract<never>; data: unknown }[]): Promise<string[]> {
  const byQueue = new Map<JobContract<never>['queue'], { name: string; data: object; opts: JobsOptions }[]>();
  const ids: string[] = [];
  for (const { contract, data } of jobs) {
    const jobId = contract.jobId(data as never);
    ids.push(jobId);
    const list = byQueue.get(contract.queue) ?? [];
    list.push({ name: contract.name, data: data as object, opts: { jobId } });
    byQueue.set(contract.queue, list);
  }
  for (const [queue, list] of byQueue) {
    for (let start = 0; start < list.length; start += BULK) await queues[queue].addBulk(list.slice(start, start + BULK));
  }
  return ids;
}
