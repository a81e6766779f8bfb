import { reconcileJob } from '../../queue/jobs.js';
import { reconcileAll } from '../../services/maintenance/reconcile.js';
import { handleJob } from '../define.js';

/** Scheduled: re-enqueues accepted work (every reconciler in RECONCILERS) whose jobs are missing from Redis. */
export const reconcileHandler = handleJob(reconcileJob, {
  async handle({ olderThanMs }, ctx) {
    const reports = await reconcileAll(ctx, olderThanMs ?? ctx.config.reconcileAfterMs);
    return Object.fromEntries(
      Object.entries(reports).map(([name, r]) => [
        name,
        'error' in r ? r : { examined: r.examined, reenqueued: r.reenqueued.length, finalised: r.finalised.length },
      ]),
    );
  },
});
