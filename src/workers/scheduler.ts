import type { AppContext } from '../services/context.js';

/**
 * Registers the maintenance schedules. upsertJobScheduler is idempotent, so every worker may
 * call this on every start; the schedules show in Bull Board under their queues. Each one is
 * configurable (a cron pattern or a period in ms): RECONCILE_EVERY_MS, CLEANUP_SCHEDULE,
 * GC_SCHEDULE, USAGE_SCHEDULE.
 */
export async function registerSchedules(ctx: AppContext): Promise<void> {
  const { cleanup } = ctx.queues;
  await cleanup.upsertJobScheduler('reconcile-uploads', { every: ctx.config.reconcileEveryMs }, { name: 'reconcile', data: {} });
  await cleanup.upsertJobScheduler('cleanup', ctx.config.schedules.cleanup, { name: 'cleanup', data: {} });
  await cleanup.upsertJobScheduler('gc', ctx.config.schedules.gc, { name: 'gc', data: {} });
  await cleanup.upsertJobScheduler('usage', ctx.config.schedules.usage, { name: 'usage', data: {} });
}
