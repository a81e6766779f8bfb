import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { Context } from 'koa';
import { lossHeader } from '../../engines/loss.js';
import { ENGINE_LABELS, type EngineName } from '../../engines/types.js';
import type { Derivation } from '../../entities/Derivation.js';
import type { StructureVersion } from '../../entities/StructureVersion.js';
import { FORMAT_LABELS, type Format } from '../../formats/types.js';
import type { AppContext } from '../../runtime/context.js';
import { type ConversionState, requestConversion } from '../../services/conversions/requests.js';
import { ApiError } from '../errors.js';
import { preferredWait, waitFor } from '../http/prefer.js';

/** A conversion under way: the job to follow and what it converts with. */
export interface ConversionUnderWay {
  jobId: string;
  body: { job: { id: string; state: 'waiting' }; conversion: { from: Format; to: Format; engine: string; engineVersion: string | undefined } };
}

/**
 * A version in another format: the stored derivative when there is one; otherwise the conversion
 * is enqueued (one job per source blob, format and options) and, with `Prefer: wait=N`, awaited.
 * Refuses with 415 when no installed engine can make the format, 422 when the conversion failed;
 * a conversion still under way comes back as such, for the route to answer 202. It waits as long
 * as `Prefer: wait=N` asks, or `waitSeconds` when given (clients that cannot send headers).
 */
export async function derivativeFor(
  app: AppContext,
  koa: Context,
  em: EntityManager,
  userId: string,
  version: StructureVersion,
  format: Format,
  waitSeconds = preferredWait(koa),
): Promise<{ derivation: Derivation } | { underWay: ConversionUnderWay }> {
  const from = version.format as Format;
  const plan = app.engineCatalog.plan({ format: from, dialect: version.summary.dialect }, format);
  if (!plan.ok) {
    const original = from === 'cif' && version.summary.dialect ? `CIF (${version.summary.dialect})` : (FORMAT_LABELS[from] ?? from);
    throw new ApiError(415, 'conversion_unavailable', `${plan.message} Download the original (${original}) instead.`, {
      from,
      to: format,
      engines: plan.wouldWork.map((name) => ENGINE_LABELS[name]),
    });
  }
  const requested = await requestConversion(app, em, version.blob, format, userId);
  if (requested.state === 'ready') return { derivation: requested.derivation };
  if (requested.state === 'failed') throw conversionFailed(requested.job);
  const jobId = requested.jobId;

  if (waitSeconds > 0) {
    const outcome = await waitFor<ConversionState>(
      waitSeconds,
      async () => {
        // Asked again rather than only looked at: a job Redis lost meanwhile is added back while the client waits.
        const known = await requestConversion(app, app.orm.em.fork(), version.blob, format, userId);
        return known.state === 'queued' ? undefined : known;
      },
      // The job notifies on this id when it ends; the pause is only the fallback.
      (ms) => app.workEvents.wait(jobId, ms),
    );
    if (outcome) {
      if (outcome.state === 'ready') return { derivation: outcome.derivation };
      if (outcome.state === 'failed') throw conversionFailed(outcome.job);
    }
  }
  return {
    underWay: {
      jobId,
      body: {
        job: { id: jobId, state: 'waiting' },
        conversion: { from, to: format, engine: ENGINE_LABELS[plan.engine as EngineName], engineVersion: plan.version },
      },
    },
  };
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
