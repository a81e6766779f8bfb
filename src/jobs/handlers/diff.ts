import { UnrecoverableError } from 'bullmq';
import { TaskTimeoutError } from '../../pool/cpuPool.js';
import { diffJob } from '../../queue/jobs.js';
import { diffKey } from '../../queue/keys.js';
import { isWorkerDeath } from '../../services/upload/refusals.js';
import { findCachedDiff, storeDiff } from '../../services/versions/diffs.js';
import { handleJob } from '../define.js';

/** Two stored blobs → their structural diff, computed in the piscina pool and cached in version_diffs. */
export const diffHandler = handleJob(diffJob, {
  async handle(d, ctx) {
    const key = diffKey(d.from.sha256, d.to.sha256, d.options);
    if (await findCachedDiff(ctx.em, key)) return { key, cached: true };
    const present = await ctx.em.execute<{ n: string }[]>('select count(*) as n from blobs where sha256 in (?, ?)', [d.from.sha256, d.to.sha256]);
    const expected = d.from.sha256 === d.to.sha256 ? 1 : 2;
    if (Number(present[0]?.n ?? 0) < expected) throw new UnrecoverableError('One of the two versions was deleted before it could be compared.');
    await ctx.job.updateProgress(10);
    const started = performance.now();
    let result: Awaited<ReturnType<typeof ctx.cpu.diff>>;
    try {
      result = await ctx.cpu.diff({
        from: { path: ctx.blobs.localPath(d.from.sha256), format: d.from.format },
        to: { path: ctx.blobs.localPath(d.to.sha256), format: d.to.format },
        options: d.options,
      });
    } catch (error) {
      // Too slow or too big once is too slow or too big again: fail for good with the reason.
      if (error instanceof TaskTimeoutError) throw new UnrecoverableError(error.message);
      if (isWorkerDeath(error)) throw new UnrecoverableError(`Comparing these versions exhausted the parser's memory limit (${(error as Error).message}).`);
      throw error;
    }
    const computeMs = Math.round(performance.now() - started);
    await storeDiff(ctx.em, { key, fromSha: d.from.sha256, toSha: d.to.sha256, options: d.options, result, computeMs });
    await ctx.job.updateProgress(100);
    return { key, computeMs, structurallyIdentical: result.structurallyIdentical };
  },
});
