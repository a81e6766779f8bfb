import { z } from 'zod';
import { runCleanup } from '../../services/maintenance/cleanup/index.js';
import { defineJob } from '../define.js';

/** Scheduled: stuck uploads, stale reservations, staging, temp files and scratch dirs (see services/maintenance/cleanup). */
export const cleanupJob = defineJob({
  name: 'cleanup',
  queue: 'cleanup',
  data: z.object({ dryRun: z.boolean().optional(), stamp: z.string().optional() }),
  jobId: (d) => `cleanup-${d.stamp ?? Date.now()}`,
  async handle({ dryRun }, ctx) {
    const report = await runCleanup(ctx, { dryRun });
    return { ...report, steps: report.steps.map((s) => ({ ...s, items: s.items.slice(0, 50) })) };
  },
});
