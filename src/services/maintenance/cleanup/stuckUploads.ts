import { TERMINAL_UPLOAD_STATES, Upload } from '../../../entities/Upload.js';
import { formatDuration } from '../../../lib/bytes.js';
import { isInfrastructureError } from '../../../lib/infrastructure.js';
import { nextUploadJob } from '../../upload/stages.js';
import { endUpload } from '../../upload/uploads.js';
import { type CleanupStep, StepTally } from './types.js';

/**
 * Uploads that have not moved for STUCK_UPLOAD_AFTER_MS (reconcile kept re-enqueueing them, or
 * their job keeps failing) are failed with a reason the user can read; endUpload removes their
 * staging file, releases their blob and their quota reservation. An upload whose job is running
 * right now, or waiting out an outage of the infrastructure, is left alone.
 */
export const stuckUploads: CleanupStep = {
  name: 'stuck uploads',
  async run(ctx) {
    const tally = new StepTally();
    const cutoff = new Date(ctx.now.getTime() - ctx.config.stuckUploadAfterMs);
    const uploads = await ctx.em.find(
      Upload,
      { state: { $nin: [...TERMINAL_UPLOAD_STATES] }, updatedAt: { $lt: cutoff } },
      { orderBy: { updatedAt: 'asc' }, limit: 1000 },
    );
    for (const upload of uploads) {
      const step = nextUploadJob(upload);
      if (step) {
        const job = await ctx.queues[step.contract.queue].getJob(step.contract.jobId(step.data as never));
        const state = job ? await job.getState() : 'missing';
        // Running, or waiting out an outage (a sick system is not a bad file): not stuck, only slow.
        if (state === 'active' || state === 'delayed' || (state === 'failed' && isInfrastructureError(job?.failedReason ?? ''))) continue;
      }
      const bytes = (await ctx.staging.size(upload.id)) ?? 0;
      tally.add({ what: `upload ${upload.id} (${upload.state} since ${upload.updatedAt.toISOString()})`, bytes, reason: 'stuck' });
      if (ctx.dryRun) continue;
      await endUpload(ctx.em.fork(), ctx, upload.id, 'failed', {
        status: 500,
        code: 'upload_stuck',
        message: `molvault could not finish storing this file within ${formatDuration(ctx.config.stuckUploadAfterMs)} and gave up; please upload it again.`,
      });
    }
    return tally.result();
  },
};
