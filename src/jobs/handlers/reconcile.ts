import { reconcileJob } from '../../queue/jobs.js';
import { runReconcile } from '../../services/maintenance/reconcileRun.js';
import { handleJob } from '../define.js';

/**
 * Scheduled: re-enqueues accepted work (every reconciler in RECONCILERS) whose jobs are missing
 * from Redis. One pass at a time across processes: a pass already running (a watchdog's) makes
 * this one a no-op.
 */
export const reconcileHandler = handleJob(reconcileJob, {
  async handle({ olderThanMs }, ctx) {
    const run = await runReconcile(ctx, olderThanMs ?? ctx.config.reconcileAfterMs, 'schedule');
    if (!run.ran) return { skipped: run.reason };
    return Object.fromEntries(
      Object.entries(run.reports).map(([name, r]) => [
        name,
        'error' in r ? r : { examined: r.examined, reenqueued: r.reenqueued.length, finalised: r.finalised.length },
      ]),
    );
  },
});
