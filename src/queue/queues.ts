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

/**
 * A Redis connection for BullMQ: unlimited retries per request, which its blocking commands need.
 * `failFast` (the connection that adds jobs and answers the API) refuses commands at once while
 * Redis is away instead of queueing them until it returns: a request then gets its 503 (or, for
 * an upload already recorded in Postgres, its 202, reconcile enqueueing it later) instead of hanging.
 */
export function redisConnection(url: string, options: { failFast?: boolean } = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, enableOfflineQueue: !options.failFast });
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
