import type { QueueName } from '../config/index.js';
import type { AppContext } from '../runtime/context.js';

/**
 * Registers the maintenance schedules. upsertJobScheduler is idempotent, so every worker may
 * call this on every start; the schedules show in Bull Board under their queues. Each one is
 * configurable (a cron pattern or a period in ms): RECONCILE_EVERY_MS, CLEANUP_SCHEDULE,
 * GC_SCHEDULE, USAGE_SCHEDULE.
 */
export async function registerSchedules(ctx: AppContext, queues: readonly QueueName[] = ['cleanup']): Promise<void> {
  if (queues.includes('cleanup')) {
    await ctx.queues.cleanup.upsertJobScheduler('reconcile-uploads', { every: ctx.config.reconcileEveryMs }, { name: 'reconcile', data: {} });
    await ctx.queues.cleanup.upsertJobScheduler('cleanup', ctx.config.schedules.cleanup, { name: 'cleanup', data: {} });
    await ctx.queues.cleanup.upsertJobScheduler('gc', ctx.config.schedules.gc, { name: 'gc', data: {} });
    await ctx.queues.cleanup.upsertJobScheduler('usage', ctx.config.schedules.usage, { name: 'usage', data: {} });
  }
  if (queues.includes('index')) {
    await ctx.queues.index.upsertJobScheduler('search-drift', { every: ctx.config.searchDriftEveryMs }, { name: 'searchDrift', data: {} });
  }
}

/** The daily backup (BACKUP_SCHEDULE, a cron pattern in UTC); "off" removes the schedule. Idempotent. */
export async function registerBackupSchedule(ctx: AppContext): Promise<void> {
  if (ctx.config.backupSchedule === 'off') {
    await ctx.queues.backup.removeJobScheduler('backup-daily');
    return;
  }
  await ctx.queues.backup.upsertJobScheduler(
    'backup-daily',
    { pattern: ctx.config.backupSchedule, tz: 'UTC' },
    { name: 'backup', data: { kind: 'scheduled' }, opts: { attempts: 3, backoff: { type: 'exponential', delay: 60_000 } } },
  );
}
