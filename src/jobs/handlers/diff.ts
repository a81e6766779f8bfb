import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { FORMATS } from '../../formats/types.js';
import { TaskTimeoutError } from '../../pool/cpuPool.js';
import { diffKey, findCachedDiff, storeDiff } from '../../services/versions/diffs.js';
import { defineJob } from '../define.js';
import { isWorkerDeath } from './validate.js';

const side = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), format: z.enum(FORMATS) });
const data = z.object({
  /** The structure the diff was asked for (ownership of the job, and its id); the cache itself is per blob pair. */
  structureId: z.uuid(),
  ownerId: z.uuid(),
  from: side,
  to: side,
  options: z.object({ moveThreshold: z.number(), bfactorThreshold: z.number(), occupancyThreshold: z.number(), limit: z.number().int() }),
});

export type DiffJobData = z.infer<typeof data>;

export function diffJobId(d: DiffJobData): string {
  return `diff-${d.structureId}-${diffKey(d.from.sha256, d.to.sha256, d.options).slice(0, 32)}`;
}

/** Two stored blobs → their structural diff, computed in the piscina pool and cached in version_diffs. */
export const diffJob = defineJob({
  name: 'diff',
  queue: 'diff',
  data,
  jobId: diffJobId,
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
