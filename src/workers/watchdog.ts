import { backupJob, reconcileJob } from '../queue/jobs.js';
import type { QueueName } from '../queue/names.js';
import type { AppContext } from '../runtime/context.js';
import { msSinceLastReconcile, runReconcile } from '../services/maintenance/reconcileRun.js';
import { checkRedisGeneration } from '../services/maintenance/redisGeneration.js';
import { RECONCILE_SCHEDULER_KEY, registerBackupSchedule, registerSchedules } from './scheduler.js';

export interface Watchdog {
  stop(): Promise<void>;
}

/** How soon a recovery that could not finish (the lock busy, a reconciler failed) is tried again. */
const RETRY_SOON_MS = 1_000;

/**
 * Postgres is the truth, and the truth drives recovery, with or without Redis's help. Every worker
 * process runs this when it starts and then every WATCHDOG_EVERY_MS:
 * - when Redis has lost its data (its generation mark is not the one Postgres remembers: see
 *   checkRedisGeneration), reconcile re-adds every job Redis no longer holds at once, without
 *   waiting for the work to look abandoned. A worker started after the loss finds it too;
 * - the schedules live in Redis; when they vanish (FLUSHALL, a Redis restarted empty) they are
 *   registered again at once, not at the next worker start;
 * - when Postgres says no reconcile pass has finished for two RECONCILE_EVERY_MS (the schedule is
 *   gone, or its jobs cannot run), this process runs one itself (one at a time across processes,
 *   under an advisory lock; see runReconcile).
 * A check that fails (Postgres or Redis away) is logged and tried again on the next tick; a recovery
 * left pending is tried again sooner.
 */
export function startWatchdog(ctx: AppContext, queues: readonly QueueName[]): Watchdog {
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** One round of checks; returns whether something is left to retry soon. */
  const tick = async (first: boolean): Promise<boolean> => {
    let retrySoon = false;
    try {
      const started = Date.now();
      const check = await checkRedisGeneration({ ...ctx, em: ctx.orm.em.fork() }, 'watchdog');
      if (check.state === 'recovered') {
        const reenqueued = Object.fromEntries(
          Object.entries(check.reports).map(([name, report]) => [name, 'error' in report ? report : report.reenqueued.length]),
        );
        ctx.log.warn({ queues, reenqueued, tookMs: Date.now() - started }, 'Redis had lost its data; reconcile re-added the jobs it no longer held');
      }
      if (check.state === 'pending') {
        ctx.log.warn({ reason: check.reason }, 'Redis has lost its data; recovery waits');
        retrySoon = true;
      }
    } catch (error) {
      // Redis or Postgres away: the next tick looks again (sooner would only repeat this warning).
      ctx.log.warn({ err: error }, 'watchdog could not check whether Redis lost its data');
    }
    // As the worker starts, only the generation: it registers the schedules itself, and their first reconcile is on its way.
    if (first) return retrySoon;
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
      if (since < 2 * ctx.config.reconcileEveryMs || stopped) return retrySoon;
      const run = await runReconcile({ ...ctx, em }, ctx.config.reconcileAfterMs, 'watchdog');
      if (run.ran) ctx.log.warn({ sinceLastMs: Number.isFinite(since) ? since : null }, 'no reconcile had run lately; the watchdog ran one');
    } catch (error) {
      ctx.log.warn({ err: error }, 'watchdog could not reconcile');
    }
    return retrySoon;
  };
  const schedule = (delayMs: number, first = false) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick(first)
        .then((retrySoon) => schedule(retrySoon ? Math.min(RETRY_SOON_MS, ctx.config.watchdogEveryMs) : ctx.config.watchdogEveryMs))
        .finally(() => {
          running = undefined;
        });
    }, delayMs);
    timer.unref();
  };
  schedule(0, true);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
