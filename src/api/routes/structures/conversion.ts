import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { Context } from 'koa';
import { lossHeader } from '../../../engines/loss.js';
import { ENGINE_LABELS, type EngineName } from '../../../engines/types.js';
import type { Derivation } from '../../../entities/Derivation.js';
import type { StructureVersion } from '../../../entities/StructureVersion.js';
import { FORMAT_LABELS, type Format } from '../../../formats/types.js';
import type { AppContext } from '../../../runtime/context.js';
import { type ConversionState, conversionState, requestConversion } from '../../../services/conversions/requests.js';
import { preferWaitSeconds, waitFor } from '../../common.js';
import { ApiError } from '../../errors.js';

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
  const requested = await requestConversion(app, em, version.blob, format, userId);
  if (requested.state === 'ready') return requested.derivation;
  if (requested.state === 'failed') throw conversionFailed(requested.job);
  const jobId = requested.jobId;

  const waitSeconds = preferWaitSeconds(koa.get('prefer'));
  if (waitSeconds > 0) {
    const outcome = await waitFor<ConversionState>(
      waitSeconds,
      async () => {
        const known = await conversionState(app, app.orm.em.fork(), version.blob, format);
        return known.state === 'queued' ? undefined : known;
      },
      // The job notifies on this id when it ends; the pause is only the fallback.
      (ms) => app.workEvents.wait(jobId, ms),
    );
    if (outcome) {
      koa.set('Preference-Applied', `wait=${waitSeconds}`);
      if (outcome.state === 'ready') return outcome.derivation;
      if (outcome.state === 'failed') throw conversionFailed(outcome.job);
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
