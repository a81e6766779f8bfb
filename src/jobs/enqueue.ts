import type { JobsOptions } from 'bullmq';
import type { JobDefinition } from './define.js';
import type { QueueSet } from './queues.js';

/** Adds a job under its deterministic id; adding an id that exists is a no-op in BullMQ. */
export async function enqueue<Data>(queues: QueueSet, definition: JobDefinition<Data>, data: Data, options: JobsOptions = {}) {
  const jobId = definition.jobId(data);
  await queues[definition.queue].add(definition.name, data as object, { ...options, jobId });
  return jobId;
}
