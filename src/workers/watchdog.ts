import { backupJob, reconcileJob } from '../queue/jobs.js';
import type { QueueName } from '../queue/names.js';
import type { AppContext } from '../runtime/context.js';
import { msSinceLastReconcile, runReconcile } from '../services/maintenance/reconcileRun.js';
import { RECONCILE_SCHEDULER_KEY, registerBackupSchedule, registerSchedules } from './scheduler.js';

export interface Watchdog {
  stop(): Promise<void>;
}

/**
 * Postgres is the truth, and the truth drives recovery, with or without Redis's help. Every worker
 * process runs this every WATCHDOG_EVERY_MS:
 * - the schedules live in Redis; when they vanish (FLUSHALL, a Redis restarted empty) they are
 *   registered again at once, not at the next worker start;
 * - when Postgres says no reconcile pass has finished for two RECONCILE_EVERY_MS (the schedule is
 *   gone, or its jobs cannot run), this process runs one itself (one at a time across processes,
 *   under an advisory lock; see runReconcile).
 * A check that fails (Postgres or Redis away) is logged and tried again on the next tick.
 */
export function startWatchdog(ctx: AppContext, queues: readonly QueueName[]): Watchdog {
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      if (queues.includes(reconcileJob.queue) && !(await ctx.queues[reconcileJob.queue].getJobScheduler(RECONCILE_SCHEDULER_KEY))) {
        await registerSchedules(ctx, queues);
        if (queues.includes(backupJob.queue)) await registerBackupSchedule(ctx);
        ctx.log.warn({ queues }, 'the schedules had vanished from Redis; registered them again');
      }
    } catch (error) {
      ctx.log.warn({ err: error }, 'watchdog could not check the schedules');
    }
    try {
      const em = ctx.orm.em.fork();
      const since = await msSinceLastReconcile({ ...ctx, em });
      if (since < 2 * ctx.config.reconcileEveryMs || stopped) return;
      const run = await runReconcile({ ...ctx, em }, ctx.config.reconcileAfterMs, 'watchdog');
      if (run.ran) ctx.log.warn({ sinceLastMs: Number.isFinite(since) ? since : null }, 'no reconcile had run lately; the watchdog ran one');
    } catch (error) {
      ctx.log.warn({ err: error }, 'watchdog could not reconcile');
    }
  };
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = tick().finally(() => {
      running = undefined;
    });
  }, ctx.config.watchdogEveryMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
