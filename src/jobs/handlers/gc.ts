import { z } from 'zod';
import { collectGarbage } from '../../services/maintenance/gc.js';
import { defineJob } from '../define.js';

/** Scheduled: unreferenced blobs and blob files without rows, after the grace period (see services/gc). */
export const gcJob = defineJob({
  name: 'gc',
  queue: 'cleanup',
  data: z.object({ dryRun: z.boolean().optional(), stamp: z.string().optional() }),
  jobId: (d) => `gc-${d.stamp ?? Date.now()}`,
  async handle({ dryRun }, ctx) {
    return collectGarbage(ctx, { dryRun });
  },
});
