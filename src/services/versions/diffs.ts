import type { EntityManager } from '@mikro-orm/postgresql';
import { VersionDiff } from '../../entities/VersionDiff.js';
import type { DiffOptions, StructuralDiff } from '../../formats/diff.js';
import { TaskTimeoutError } from '../../pool/cpuPool.js';
import { enqueue } from '../../queue/enqueue.js';
import { type DiffJobData, diffJob } from '../../queue/jobs.js';
import { diffKey } from '../../queue/keys.js';
import type { QueueSet } from '../../queue/queues.js';
import type { WorkContext } from '../../runtime/context.js';
import { forgetRequest, rememberRequest } from '../maintenance/workRequests.js';
import { isWorkerDeath } from '../upload/refusals.js';

/** The cache key of a diff (also in its job's id, so it lives with the job contracts). */

/** A diff that cannot be computed, for a reason trying again will not change. */
export class DiffImpossible extends Error {}

/**
 * Two stored blobs → their structural diff, computed in the CPU pool and cached in version_diffs.
 * A cached diff is returned at once, so a repeated delivery computes nothing. Throws DiffImpossible
 * when a blob is gone, or when the comparison ran out of time or memory (it would again).
 */
export async function computeDiff(ctx: WorkContext, d: DiffJobData) {
  const key = diffKey(d.from.sha256, d.to.sha256, d.options);
  if (await findCachedDiff(ctx.em, key)) return { key, cached: true };
  const present = await ctx.em.execute<{ n: string }[]>('select count(*) as n from blobs where sha256 in (?, ?)', [d.from.sha256, d.to.sha256]);
  const expected = d.from.sha256 === d.to.sha256 ? 1 : 2;
  if (Number(present[0]?.n ?? 0) < expected) throw new DiffImpossible('One of the two versions was deleted before it could be compared.');
  await ctx.job?.updateProgress(10);
  const started = performance.now();
  let result: StructuralDiff;
  try {
    result = await ctx.blobs.withFile(d.from.sha256, (fromFile) =>
      ctx.blobs.withFile(d.to.sha256, (toFile) =>
        ctx.cpu.diff({ from: { path: fromFile, format: d.from.format }, to: { path: toFile, format: d.to.format }, options: d.options }),
      ),
    );
  } catch (error) {
    // Too slow or too big once is too slow or too big again: fail for good with the reason.
    if (error instanceof TaskTimeoutError) throw new DiffImpossible(error.message);
    if (isWorkerDeath(error)) throw new DiffImpossible(`Comparing these versions exhausted the parser's memory limit (${(error as Error).message}).`);
    throw error;
  }
  const computeMs = Math.round(performance.now() - started);
  await storeDiff(ctx.em, { key, fromSha: d.from.sha256, toSha: d.to.sha256, options: d.options, result, computeMs });
  await ctx.job?.updateProgress(100);
  return { key, computeMs, structurallyIdentical: result.structurallyIdentical };
}

export type DiffRequest = { state: 'ready'; diff: VersionDiff } | { state: 'failed'; reason: string } | { state: 'queued'; jobId: string };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A diff of two stored blobs: cached (ready), its job having failed (failed, reported once: the job
 * is removed so the next request tries again), or enqueued and waited for up to `waitMs` (queued
 * when it has not finished by then).
 */
export async function requestDiff(queues: QueueSet, em: EntityManager, data: DiffJobData, waitMs: number): Promise<DiffRequest> {
  const key = diffKey(data.from.sha256, data.to.sha256, data.options);
  const cached = await findCachedDiff(em, key);
  if (cached) return { state: 'ready', diff: cached };

  const jobId = diffJob.jobId(data);
  const failure = async () => {
    const job = await queues[diffJob.queue].getJob(jobId);
    if (!job) {
      // Never added, or lost with Redis while a client waits: (re-)added under its deterministic id.
      await enqueue(queues, diffJob, data);
      return undefined;
    }
    const state = await job.getState();
    if (state === 'failed') {
      await job.remove().catch(() => {});
      await forgetRequest(em, queues, jobId);
      return job.failedReason || 'the comparison failed';
    }
    if (state === 'completed' && !(await findCachedDiff(em, key))) {
      // Finished earlier but its cache row is gone (e.g. a blob was re-stored): run it again.
      await job.remove().catch(() => {});
      await enqueue(queues, diffJob, data);
    }
    return undefined;
  };
  const earlier = await failure();
  if (earlier) return { state: 'failed', reason: earlier };
  // In Postgres before Redis: a job Redis loses is added back by reconcile or the client's next look.
  await rememberRequest(em, queues, 'diff', data);
  await enqueue(queues, diffJob, data);

  const deadline = Date.now() + waitMs;
  for (let pause = 50; Date.now() < deadline; pause = Math.min(pause * 2, 500)) {
    await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
    const row = await findCachedDiff(em, key);
    if (row) return { state: 'ready', diff: row };
    const reason = await failure();
    if (reason) return { state: 'failed', reason };
  }
  return { state: 'queued', jobId };
}

export async function findCachedDiff(em: EntityManager, key: string): Promise<VersionDiff | null> {
  return em.findOne(VersionDiff, { key }, { refresh: true });
}

/** Stores a computed diff (idempotent: a second delivery of the same job changes nothing). */
export async function storeDiff(
  em: EntityManager,
  entry: { key: string; fromSha: string; toSha: string; options: DiffOptions; result: StructuralDiff; computeMs: number },
): Promise<void> {
  await em.execute(
    `insert into version_diffs (key, from_blob_sha256, to_blob_sha256, options, result, compute_ms, created_at)
     values (?, ?, ?, ?::jsonb, ?::jsonb, ?, now()) on conflict (key) do nothing`,
    [entry.key, entry.fromSha, entry.toSha, JSON.stringify(entry.options), JSON.stringify(entry.result), entry.computeMs],
  );
}

/**
 * For the cleanup schedule: forgets diffs computed more than `maxAgeDays` ago (a later request
 * computes them again). Rows also go with either blob (foreign key cascade), so this only bounds
 * the cache of long-lived versions.
 */
export async function expireDiffCache(em: EntityManager, maxAgeDays: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - maxAgeDays * 24 * 3600 * 1000);
  const rows = await em.execute<{ key: string }[]>('delete from version_diffs where created_at < ? returning key', [cutoff]);
  return rows.length;
}
