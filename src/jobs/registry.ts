import { QUEUE_NAMES, type QueueName } from '../config/index.js';
import type { JobDefinition } from './define.js';
import { backupJob, verifyBackupJob } from './handlers/backup.js';
import { cleanupJob } from './handlers/cleanup.js';
import { convertJob } from './handlers/convert.js';
import { diffJob } from './handlers/diff.js';
import { exportJob } from './handlers/export.js';
import { gcJob } from './handlers/gc.js';
import { importBatchJob } from './handlers/importBatch.js';
import { importChunkJob } from './handlers/importChunk.js';
import { importExpandJob } from './handlers/importExpand.js';
import { importItemJob } from './handlers/importItem.js';
import { ingestJob } from './handlers/ingest.js';
import { reconcileJob } from './handlers/reconcile.js';
import { searchDriftJob } from './handlers/searchDrift.js';
import { indexJob } from './handlers/searchIndex.js';
import { snapshotJob } from './handlers/snapshot.js';
import { usageJob } from './handlers/usage.js';
import { validateJob } from './handlers/validate.js';

/** Every job molvault runs. A worker refuses to start if this and the queue list disagree. */
export const JOBS: JobDefinition<never>[] = [
  ingestJob,
  validateJob,
  snapshotJob,
  indexJob,
  reconcileJob,
  searchDriftJob,
  usageJob,
  diffJob,
  backupJob,
  verifyBackupJob,
  convertJob,
  exportJob,
  cleanupJob,
  gcJob,
  importBatchJob,
  importItemJob,
  importChunkJob,
  importExpandJob,
] as JobDefinition<never>[];

export class RegistryError extends Error {}

/** Checks that every queue has a handler and every handler a queue, names unique. */
export function checkRegistry(jobs: readonly JobDefinition<never>[], queues: readonly QueueName[] = QUEUE_NAMES): Map<string, JobDefinition<never>> {
  const problems: string[] = [];
  const byName = new Map<string, JobDefinition<never>>();
  for (const job of jobs) {
    if (byName.has(job.name)) problems.push(`job "${job.name}" is defined twice`);
    if (!queues.includes(job.queue)) problems.push(`job "${job.name}" names queue "${job.queue}", which does not exist`);
    if (typeof job.handle !== 'function') problems.push(`job "${job.name}" has no handler`);
    if (job.name.includes('-')) problems.push(`job "${job.name}": names may not contain "-" (it separates job ids)`);
    byName.set(job.name, job);
  }
  for (const queue of queues) {
    if (!jobs.some((job) => job.queue === queue)) problems.push(`queue "${queue}" has no job handler`);
  }
  if (problems.length > 0) throw new RegistryError(`The job registry is inconsistent:\n  - ${problems.join('\n  - ')}`);
  return byName;
}

export function jobDefinition(name: string): JobDefinition<never> | undefined {
  return JOBS.find((job) => job.name === name);
}
