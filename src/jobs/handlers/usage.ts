import { usageJob } from '../../queue/jobs.js';
import { recomputeAllUsage } from '../../services/quota/usage.js';
import { handleJob } from '../define.js';

/** Nightly and on demand: every user's usage recomputed from Postgres; drift is corrected and logged. */
export const usageHandler = handleJob(usageJob, {
  async handle(_data, ctx) {
    const report = await recomputeAllUsage(ctx.em, ctx.log);
    return { users: report.users, corrected: report.drifted.length, drifted: report.drifted.slice(0, 100) };
  },
});
