import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { JobContract } from '../../queue/contract.js';
import { enqueue } from '../../queue/enqueue.js';
import { type ConvertJobData, convertJob, type DiffJobData, diffJob } from '../../queue/jobs.js';
import { diffKey } from '../../queue/keys.js';
import type { QueueSet } from '../../queue/queues.js';
import { findDerivation } from '../conversions/derivations.js';
import type { Reconciler } from './reconciler.js';

/**
 * Conversions and diffs a client asked for, recorded in Postgres (`work_requests`) until their
 * result exists there, so the work outlives a Redis that lost its job: reconcile adds the job back
 * under its deterministic id, and so does a client following the job (GET /v1/jobs/:id).
 */

/** The kinds of work kept here, each with its job contract. */
const CONTRACTS = { convert: convertJob, diff: diffJob } as const;
export type RequestKind = keyof typeof CONTRACTS;

/**
 * How long a request counts as waited for after a client last asked: a client that went away for
 * longer asks again (which records it again) or never comes back.
 */
export const REQUEST_WAITED_FOR_MS = 24 * 3600 * 1000;

/**
 * Whose queues a request was put in: a request is added back only to the queues that took it (two
 * deployments, or test runs, sharing one database each keep their own).
 */
function queuePrefixOf(queues: QueueSet): string {
  return queues[diffJob.queue].opts.prefix ?? 'bull';
}

/** Records (or, asked again, refreshes) a request for a conversion or a diff, under its job id. */
export async function rememberRequest(em: EntityManager, queues: QueueSet, kind: 'convert', data: ConvertJobData): Promise<void>;
export async function rememberRequest(em: EntityManager, queues: QueueSet, kind: 'diff', data: DiffJobData): Promise<void>;
export async function rememberRequest(em: EntityManager, queues: QueueSet, kind: RequestKind, data: ConvertJobData | DiffJobData): Promise<void> {
  const jobId = (CONTRACTS[kind] as JobContract<unknown>).jobId(data);
  await em.execute(
    `insert into work_requests (queue_prefix, job_id, kind, data) values (?, ?, ?, ?::jsonb)
     on conflict (queue_prefix, job_id) do update set asked_at = now()`,
    [queuePrefixOf(queues), jobId, kind, JSON.stringify(data)],
  );
}

/** Forgets a request: its result is stored, or its failure was reported. */
export async function forgetRequest(em: EntityManager, queues: QueueSet, jobId: string): Promise<void> {
  await em.execute('delete from work_requests where queue_prefix = ? and job_id = ?', [queuePrefixOf(queues), jobId]);
}

interface RequestRow {
  job_id: string;
  kind: RequestKind;
  data: Record<string, unknown>;
}

/** Whether the request's result is in Postgres (then nothing is waited for any more). */
async function finished(em: EntityManager, row: RequestRow): Promise<boolean> {
  if (row.kind === 'convert') {
    const data = row.data as ConvertJobData;
    return (await findDerivation(em, data.sourceSha256, data.format, data.options ?? {})) !== null;
  }
  const data = row.data as DiffJobData;
  const [found] = await em.execute<{ n: number }[]>('select count(*)::int as n from version_diffs where key = ?', [
    diffKey(data.from.sha256, data.to.sha256, data.options),
  ]);
  return (found?.n ?? 0) > 0;
}

/**
 * The job of a recorded request that Redis no longer has, added back under its id (a client
 * following GET /v1/jobs/:id after Redis lost it); undefined when no such request is recorded.
 */
export async function recoverRequestedJob(queues: QueueSet, em: EntityManager, jobId: string): Promise<Job | undefined> {
  const [row] = await em.execute<RequestRow[]>('select job_id, kind, data from work_requests where queue_prefix = ? and job_id = ?', [
    queuePrefixOf(queues),
    jobId,
  ]);
  const contract = row && (CONTRACTS[row.kind] as JobContract<unknown> | undefined);
  const parsed = contract?.data.safeParse(row.data);
  if (!contract || !parsed?.success || (await finished(em, row))) return undefined;
  await enqueue(queues, contract, parsed.data);
  return (await queues[contract.queue].getJob(jobId)) ?? undefined;
}

/**
 * Conversions and diffs a client still waits for whose job Redis may have lost. Requests whose
 * result is stored, or that no client asked for within REQUEST_WAITED_FOR_MS, are forgotten here.
 */
export const requestsReconciler: Reconciler = {
  name: 'requests',
  async find(ctx, cutoff) {
    await ctx.em.execute('delete from work_requests where asked_at < ?', [new Date(Date.now() - REQUEST_WAITED_FOR_MS)]);
    const rows = await ctx.em.execute<RequestRow[]>(
      'select job_id, kind, data from work_requests where queue_prefix = ? and requested_at <= ? order by requested_at limit 10000',
      [queuePrefixOf(ctx.queues), cutoff],
    );
    const open = [];
    for (const row of rows) {
      const contract = CONTRACTS[row.kind] as JobContract<unknown> | undefined;
      const parsed = contract?.data.safeParse(row.data);
      if (!contract || !parsed?.success || (await finished(ctx.em, row))) {
        await forgetRequest(ctx.em, ctx.queues, row.job_id);
        continue;
      }
      open.push({ subject: row.job_id, contract: contract as JobContract<never>, data: parsed.data as Record<string, unknown> });
    }
    return open;
  },
  async finalise(ctx, candidate) {
    // Failed for good: the job (kept in Redis) reports the failure to whoever asks again.
    await forgetRequest(ctx.em, ctx.queues, candidate.subject);
  },
};
