import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { Context } from 'koa';
import { lossHeader } from '../../../engines/loss.js';
import { ENGINE_LABELS, type EngineName } from '../../../engines/types.js';
import type { Derivation } from '../../../entities/Derivation.js';
import type { StructureVersion } from '../../../entities/StructureVersion.js';
import { FORMAT_LABELS, type Format } from '../../../formats/types.js';
import { enqueue } from '../../../jobs/enqueue.js';
import { convertJob } from '../../../jobs/handlers/convert.js';
import type { AppContext } from '../../../services/context.js';
import { conversionJobId, findDerivation } from '../../../services/derivations.js';
import { preferWaitSeconds, waitFor } from '../../common.js';
import { ApiError } from '../../errors.js';

/** Options are not settable yet; the column and the job id already carry them. */
const NO_OPTIONS: Record<string, unknown> = {};

/**
 * A version in another format: the stored derivative when there is one; otherwise the conversion
 * is enqueued (one job per source blob, format and options) and, with `Prefer: wait=N`, awaited.
 * Answers 415 when no installed engine can make the format, and undefined after answering 202.
 */
export async function derivativeFor(app: AppContext, koa: Context, em: EntityManager, userId: string, version: StructureVersion, format: Format) {
  const from = version.format as Format;
  const plan = app.engineCatalog.plan({ format: from, dialect: version.summary.dialect }, format);
  if (!plan.ok) {
    throw new ApiError(415, 'conversion_unavailable', `${plan.message} Download the original (${FORMAT_LABELS[from] ?? from}) instead.`, {
      from,
      to: format,
      engines: plan.wouldWork.map((name) => ENGINE_LABELS[name]),
    });
  }
  const cached = await findDerivation(em, version.blob, format, NO_OPTIONS);
  // A row whose bytes are gone (a restored database, a lost disk) is converted again.
  if (cached && (await app.blobs.has(cached.blob))) return cached;

  const jobId = conversionJobId(version.blob, format, NO_OPTIONS);
  let existing = await app.queues.convert.getJob(jobId);
  const state = await existing?.getState();
  if (existing && state === 'failed') throw conversionFailed((await app.queues.convert.getJob(jobId)) ?? existing);
  if (existing && state === 'completed') {
    // Done once, but its derivative has since been collected: convert again.
    await existing.remove().catch(() => {});
    existing = undefined;
  }
  if (!existing) await enqueue(app.queues, convertJob, { sourceSha256: version.blob, format, options: NO_OPTIONS, ownerId: userId });

  const waitSeconds = preferWaitSeconds(koa.get('prefer'));
  if (waitSeconds > 0) {
    const outcome = await waitFor<Derivation | Job>(
      waitSeconds,
      async () => {
        const derivation = await findDerivation(app.orm.em.fork(), version.blob, format, NO_OPTIONS);
        if (derivation && (await app.blobs.has(derivation.blob))) return derivation;
        const job = await app.queues.convert.getJob(jobId);
        if (!job || (await job.getState()) !== 'failed') return undefined;
        // Read again: the copy above may predate the failure, without its reason.
        return (await app.queues.convert.getJob(jobId)) ?? job;
      },
      // The job notifies on this id when it ends; the pause is only the fallback.
      (ms) => app.uploadEvents.wait(jobId, ms),
    );
    if (outcome) {
      koa.set('Preference-Applied', `wait=${waitSeconds}`);
      if ('sourceBlob' in outcome) return outcome;
      throw conversionFailed(outcome);
    }
  }
  koa.status = 202;
  koa.set('Location', `/v1/jobs/${jobId}`);
  koa.body = {
    job: { id: jobId, state: 'waiting' },
    conversion: { from, to: format, engine: ENGINE_LABELS[plan.engine as EngineName], engineVersion: plan.version },
  };
  return undefined;
}

function conversionFailed(job: Job): ApiError {
  return new ApiError(422, 'conversion_failed', job.failedReason || 'The conversion failed.', { jobId: job.id });
}

/** Headers that say who made a derivative and what the conversion lost. */
export function setDerivationHeaders(koa: Context, derivation: Derivation): void {
  koa.set('X-Molvault-Engine', `${derivation.engine} ${derivation.engineVersion}`);
  koa.set('X-Molvault-Conversion-Loss', lossHeader(derivation.loss));
  koa.set('X-Molvault-Derived-From', derivation.sourceBlob);
}
