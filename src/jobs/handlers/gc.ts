import { gcJob } from '../../queue/jobs.js';
import { collectGarbage } from '../../services/maintenance/gc.js';
import { handleJob } from '../define.js';

/** Scheduled: unreferenced blobs and blob files without rows, after the grace period (services/maintenance/gc.ts). */
export const gcHandler = handleJob(gcJob, {
  async handle({ dryRun }, ctx) {
    return collectGarbage(ctx, { dryRun });
  },
});
