import { z } from 'zod';
import { reconcileUploads } from '../../services/reconcile.js';
import { defineJob } from '../define.js';

/** Scheduled: re-enqueues accepted uploads whose jobs are missing from Redis. */
export const reconcileJob = defineJob({
  name: 'reconcile',
  queue: 'cleanup',
  data: z.object({ olderThanMs: z.number().int().min(0).optional() }),
  jobId: () => `reconcile-${Date.now()}`,
  async handle({ olderThanMs }, ctx) {
    const report = await reconcileUploads(ctx, olderThanMs ?? ctx.config.reconcileAfterMs);
    return { examined: report.examined, reenqueued: report.reenqueued.length, finalised: report.finalised.length };
  },
});
