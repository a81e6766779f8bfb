import type { AppContext } from '../services/context.js';

/**
 * Registers the maintenance schedules. upsertJobScheduler is idempotent, so every worker may
 * call this on every start; the schedules show in Bull Board under their queues.
 */
export async function registerSchedules(ctx: AppContext): Promise<void> {
  await ctx.queues.cleanup.upsertJobScheduler('reconcile-uploads', { every: ctx.config.reconcileEveryMs }, { name: 'reconcile', data: {} });
}
