import type { JobContract } from '../queue/contract.js';
import { JOB_CONTRACTS } from '../queue/jobs.js';
import { QUEUE_NAMES, type QueueName } from '../queue/names.js';
import type { JobHandler } from './define.js';
import { backupHandler, verifyBackupHandler } from './handlers/backup.js';
import { cleanupHandler } from './handlers/cleanup.js';
import { convertHandler } from './handlers/convert.js';
import { diffHandler } from './handlers/diff.js';
import { exportHandler } from './handlers/export.js';
import { gcHandler } from './handlers/gc.js';
import { importBatchHandler } from './handlers/importBatch.js';
import { importChunkHandler } from './handlers/importChunk.js';
import { importExpandHandler } from './handlers/importExpand.js';
import { importItemHandler } from './handlers/importItem.js';
import { ingestHandler } from './handlers/ingest.js';
import { reconcileHandler } from './handlers/reconcile.js';
import { searchDriftHandler } from './handlers/searchDrift.js';
import { indexHandler } from './handlers/searchIndex.js';
import { snapshotHandler } from './handlers/snapshot.js';
import { usageHandler } from './handlers/usage.js';
import { validateHandler } from './handlers/validate.js';

/** How every job molvault runs is handled. A worker refuses to start if this, the contracts and the queues disagree. */
export const JOBS: JobHandler<never>[] = [
  ingestHandler,
  validateHandler,
  snapshotHandler,
  indexHandler,
  reconcileHandler,
  searchDriftHandler,
  usageHandler,
  diffHandler,
  backupHandler,
  verifyBackupHandler,
  convertHandler,
  exportHandler,
  cleanupHandler,
  gcHandler,
  importBatchHandler,
  importItemHandler,
  importChunkHandler,
  importExpandHandler,
] as JobHandler<never>[];

export class RegistryError extends Error {}

/**
 * Checks that every contract has exactly one handler and every handler a contract, that every queue
 * has a job and every job a queue, names unique. Returns the handlers by job name.
 */
export function checkRegistry(
  handlers: readonly JobHandler<never>[],
  contracts: readonly JobContract<never>[] = JOB_CONTRACTS,
  queues: readonly QueueName[] = QUEUE_NAMES,
): Map<string, JobHandler<never>> {
  const problems: string[] = [];
  const byName = new Map<string, JobHandler<never>>();
  const contractNames = new Set<string>();
  for (const contract of contracts) {
    if (contractNames.has(contract.name)) problems.push(`job "${contract.name}" has two contracts`);
    contractNames.add(contract.name);
    if (!handlers.some((handler) => handler.contract === contract)) problems.push(`job "${contract.name}" has no handler`);
  }
  for (const handler of handlers) {
    if (byName.has(handler.name)) problems.push(`job "${handler.name}" is defined twice`);
    if (!contracts.includes(handler.contract)) problems.push(`job "${handler.name}" has a handler but no contract in src/queue/jobs.ts`);
    if (!queues.includes(handler.queue)) problems.push(`job "${handler.name}" names queue "${handler.queue}", which does not exist`);
    if (typeof handler.handle !== 'function') problems.push(`job "${handler.name}" has no handler`);
    if (handler.name.includes('-')) problems.push(`job "${handler.name}": names may not contain "-" (it separates job ids)`);
    byName.set(handler.name, handler);
  }
  for (const queue of queues) {
    if (!handlers.some((handler) => handler.queue === queue)) problems.push(`queue "${queue}" has no job handler`);
  }
  if (problems.length > 0) throw new RegistryError(`The job registry is inconsistent:\n  - ${[...new Set(problems)].join('\n  - ')}`);
  return byName;
}
