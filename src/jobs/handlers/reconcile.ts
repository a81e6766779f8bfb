import { z } from 'zod';
import { reconcileAll } from '../../services/maintenance/reconcile.js';
import { defineJob } from '../define.js';

/** Scheduled: re-enqueues accepted work (every reconciler in RECONCILERS) whose jobs are missing from Redis. */
export const reconcileJob = defineJob({
  name: 'reconcile',
  queue: 'cleanup',
  data: z.object({ olderThanMs: z.number().int().min(0).optional(), stamp: z.string().optional() }),
  jobId: (d) => `reconcile-${d.stamp ?? Date.now()}`,
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
