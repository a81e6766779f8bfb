import { importBatchJob } from '../../queue/jobs.js';
import { closeImport } from '../../services/imports/finish.js';
import { handleJob } from '../define.js';

/** The parent of an import's flow: runs once every child has ended, and closes the import (services/imports/finish.ts). */
export const importBatchHandler = handleJob(importBatchJob, {
  async handle({ batchId }, ctx) {
    const failures = await ctx.job.getIgnoredChildrenFailures().catch(() => ({}) as Record<string, string>);
    const closed = await closeImport(ctx, batchId, failures);
    if (!closed) return { skipped: 'missing' };
    const { state, error, progress } = closed;
    if (progress) await ctx.job.updateProgress(progress);
    ctx.log.info({ batchId, state, ...progress }, `import ${state}`);
    return { state, ...progress, ...(error ? { error } : {}) };
  },
});
