import { DelayedError, type Job } from 'bullmq';
import type { Logger } from '../lib/logger.js';
import { isStorageFull } from '../storage/freeSpace.js';

/**
 * A job that met a full disk (StorageFullError, ENOSPC, a disk quota, Postgres's disk_full) is put
 * back to wait `delayMs` and run again, for as long as it takes: not counted as an attempt, never
 * handed to `onFinalFailure`, so accepted work is not failed because the disk filled. Any other
 * error is rethrown for BullMQ's usual retries.
 */
export async function waitOutFullStorage(job: Job, token: string | undefined, error: unknown, delayMs: number, log: Logger): Promise<never> {
  if (!token || !isStorageFull(error)) throw error;
  log.warn({ queue: job.queueName, jobId: job.id, retryInMs: delayMs, err: (error as Error).message }, 'storage full: the job waits for space');
  await job.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}
