import type { QueueName } from '../config/index.js';
import type { AppContext } from '../services/context.js';

/**
 * Registers the maintenance schedules. upsertJobScheduler is idempotent, so every worker may
 * call this on every start; the schedules show in Bull Board under their queues.
 */
export async function registerSchedules(ctx: AppContext, queues: readonly QueueName[] = ['cleanup']): Promise<void> {
  if (queues.includes('cleanup')) {
    await ctx.queues.cleanup.upsertJobScheduler('reconcile-uploads', { every: ctx.config.reconcileEveryMs }, { name: 'reconcile', data: {} });
  }
  if (queues.includes('index')) {
    await ctx.queues.index.upsertJobScheduler('search-drift', { every: ctx.config.searchDriftEveryMs }, { name: 'searchDrift', data: {} });
  }
}
