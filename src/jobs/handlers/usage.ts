import { z } from 'zod';
import { recomputeAllUsage } from '../../services/quota/usage.js';
import { defineJob } from '../define.js';

/** Nightly and on demand: every user's usage recomputed from Postgres; drift is corrected and logged. */
export const usageJob = defineJob({
  name: 'usage',
  queue: 'cleanup',
  data: z.object({ stamp: z.string().optional() }),
  jobId: (d) => `usage-${d.stamp ?? Date.now()}`,
  async handle(_data, ctx) {
    const report = await recomputeAllUsage(ctx.em, ctx.log);
    return { users: report.users, corrected: report.drifted.length, drifted: report.drifted.slice(0, 100) };
  },
});
