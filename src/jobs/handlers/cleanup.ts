import { cleanupJob } from '../../queue/jobs.js';
import { runCleanup } from '../../services/maintenance/cleanup/index.js';
import { handleJob } from '../define.js';

/** Scheduled: stuck uploads, stale reservations, staging, temp files and scratch dirs (see services/maintenance/cleanup). */
export const cleanupHandler = handleJob(cleanupJob, {
  async handle({ dryRun }, ctx) {
    const report = await runCleanup(ctx, { dryRun });
    return { ...report, steps: report.steps.map((s) => ({ ...s, items: s.items.slice(0, 50) })) };
  },
});
