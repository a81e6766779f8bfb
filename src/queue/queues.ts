import { type DefaultJobOptions, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from './names.js';

export { QUEUE_NAMES, type QueueName };

/** Retries with exponential backoff; finished jobs kept long enough to be looked at. */
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 50_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
};

export function redisConnection(url: string): Redis {
  // BullMQ's blocking commands need unlimited retries per request.
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}

export type QueueSet = Record<QueueName, Queue>;

export function createQueues(connection: Redis, prefix: string): QueueSet {
  const queues = {} as QueueSet;
  for (const name of QUEUE_NAMES) {
    queues[name] = new Queue(name, { connection, prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS });
  }
  return queues;
}

export async function closeQueues(queues: QueueSet): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
