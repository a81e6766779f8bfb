import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { Derivation } from '../../entities/Derivation.js';
import type { Format } from '../../formats/types.js';
import { enqueue } from '../../queue/enqueue.js';
import { conversionJobId, convertJob } from '../../queue/jobs.js';
import type { AppContext } from '../../runtime/context.js';
import { forgetRequest, rememberRequest } from '../maintenance/workRequests.js';
import { findDerivation } from './derivations.js';

/** Options are not settable yet; the column and the job id already carry them. */
const NO_OPTIONS: Record<string, unknown> = {};

export type ConversionState = { state: 'ready'; derivation: Derivation } | { state: 'failed'; job: Job } | { state: 'queued'; jobId: string; job?: Job };

/**
 * Where a conversion of a stored blob stands, without starting anything: its stored derivative
 * (ready), its job having failed for good (failed), or its job still to finish (queued; `job`
 * absent when Redis has no such job).
 */
export async function conversionState(app: AppContext, em: EntityManager, sourceSha256: string, format: Format): Promise<ConversionState> {
  const derivation = await findDerivation(em, sourceSha256, format, NO_OPTIONS);
  // A row whose bytes are gone (a restored database, a lost disk) is converted again.
  if (derivation && (await app.blobs.has(derivation.blob))) return { state: 'ready', derivation };
  const jobId = conversionJobId(sourceSha256, format, NO_OPTIONS);
  const job = await app.queues[convertJob.queue].getJob(jobId);
  if (job && (await job.getState()) === 'failed') {
    // Read again: the copy above may predate the failure, without its reason.
    return { state: 'failed', job: (await app.queues[convertJob.queue].getJob(jobId)) ?? job };
  }
  return { state: 'queued', jobId, job };
}

/**
 * The stored derivative of a blob in a format, or its conversion job: enqueued unless it is
 * already waiting or running (one job per source blob, format and options, whoever asks). A job
 * that completed but whose derivative has since been collected is run again; one that failed for
 * good is reported as failed (asking again would fail again).
 */
export async function requestConversion(app: AppContext, em: EntityManager, sourceSha256: string, format: Format, ownerId: string): Promise<ConversionState> {
  const known = await conversionState(app, em, sourceSha256, format);
  if (known.state !== 'queued') {
    if (known.state === 'failed') await forgetRequest(em, app.queues, known.job.id as string);
    return known;
  }
  const data = { sourceSha256, format, options: NO_OPTIONS, ownerId };
  // In Postgres before Redis: a job Redis loses is added back by reconcile or the client's next look.
  await rememberRequest(em, app.queues, 'convert', data);
  if (known.job && (await known.job.getState()) === 'completed') {
    // Done once, but its derivative has since been collected: convert again.
    await known.job.remove().catch(() => {});
  } else if (known.job) {
    return known;
  }
  await enqueue(app.queues, convertJob, data);
  return { state: 'queued', jobId: known.jobId };
}
