import type { JobsOptions } from 'bullmq';
import type { JobContract } from './contract.js';
import type { QueueSet } from './queues.js';

/** Adds a job under its deterministic id; adding an id that exists is a no-op in BullMQ. */
export async function enqueue<Data>(queues: QueueSet, contract: JobContract<Data>, data: Data, options: JobsOptions = {}) {
  const jobId = contract.jobId(data);
  await queues[contract.queue].add(contract.name, data as object, { ...options, jobId });
  return jobId;
}
