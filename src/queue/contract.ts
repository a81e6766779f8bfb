import type { z } from 'zod';
import type { QueueName } from './names.js';

/**
 * What everyone who enqueues a job needs to know of it, and nothing of how it runs: its name, its
 * queue, the shape of its data and its deterministic id. The handler that runs it is bound to the
 * contract in src/jobs/registry.ts.
 */
export interface JobContract<Data = unknown> {
  name: string;
  queue: QueueName;
  data: z.ZodType<Data>;
  /** Deterministic id: enqueueing the same work twice yields one job. */
  jobId(data: Data): string;
}

export function jobContract<Data>(contract: JobContract<Data>): JobContract<Data> {
  return contract;
}

/** Job ids are `<job name>-<subject id...>`, so the name (and through it the queue) is in the id. */
export function jobNameFromId(jobId: string): string {
  return jobId.split('-')[0] ?? '';
}
