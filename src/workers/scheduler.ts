import { backupJob, cleanupJob, gcJob, reconcileJob, searchDriftJob, usageJob } from '../queue/jobs.js';
import type { QueueName } from '../queue/names.js';
import type { AppContext } from '../runtime/context.js';

/** The reconcile schedule's key: the watchdog (watchdog.ts) reads it to tell whether Redis still has the schedules. */
export const RECONCILE_SCHEDULER_KEY = 'reconcile-uploads';

/**
 * Registers the maintenance schedules, each under a scheduler key of its own. upsertJobScheduler is
 * idempotent, so every worker may call this on every start; the schedules show in Bull Board under
 * their queues. Each one is configurable (a cron pattern or a period in ms): RECONCILE_EVERY_MS,
 * CLEANUP_SCHEDULE, GC_SCHEDULE, USAGE_SCHEDULE, SEARCH_DRIFT_EVERY_MS.
 */
export async function registerSchedules(ctx: AppContext, queues: readonly QueueName[] = [reconcileJob.queue]): Promise<void> {
  const schedules = [
    { key: RECONCILE_SCHEDULER_KEY, contract: reconcileJob, repeat: { every: ctx.config.reconcileEveryMs } },
    { key: 'cleanup', contract: cleanupJob, repeat: ctx.config.schedules.cleanup },
    { key: 'gc', contract: gcJob, repeat: ctx.config.schedules.gc },
    { key: 'usage', contract: usageJob, repeat: ctx.config.schedules.usage },
    { key: 'search-drift', contract: searchDriftJob, repeat: { every: ctx.config.searchDriftEveryMs } },
  ];
  for (const { key, contract, repeat } of schedules) {
    if (queues.includes(contract.queue)) await ctx.queues[contract.queue].upsertJobScheduler(key, repeat, { name: contract.name, data: {} });
  }
}

/** The daily backup (BACKUP_SCHEDULE, a cron pattern in UTC); "off" removes the schedule. Idempotent. */
export async function registerBackupSchedule(ctx: AppContext): Promise<void> {
  const queue = ctx.queues[backupJob.queue];
  if (ctx.config.backupSchedule === 'off') {
    await queue.removeJobScheduler('backup-daily');
    return;
  }
  await queue.upsertJobScheduler(
    'backup-daily',
    { pattern: ctx.config.backupSchedule, tz: 'UTC' },
    { name: backupJob.name, data: { kind: 'scheduled' }, opts: { attempts: 3, backoff: { type: 'exponential', delay: 60_000 } } },
  );
}
