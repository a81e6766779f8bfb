import fs from 'node:fs/promises';
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { Upload } from '../../entities/Upload.js';
import { extensionHint, formatsCompatible } from '../../formats/sniff.js';
import { FORMAT_LABELS, FORMATS, type Format, MEDIA_TYPES } from '../../formats/types.js';
import { lockBlob, recordBlob } from '../../services/quota/blobs.js';
import { QuotaExceededError, reserve, shrinkReservation, userHoldsBlob } from '../../services/quota/quota.js';
import { endUpload } from '../../services/upload/uploads.js';
import { defineJob, type JobContext, type StageOutcome } from '../define.js';
import { enqueue } from '../enqueue.js';
import { validateJob } from './validate.js';

const data = z.object({ uploadId: z.uuid(), ownerId: z.uuid() });

/** Staged upload → unwrapped, hashed, format sniffed, content-addressed into the blob store. */
export const ingestJob = defineJob({
  name: 'ingest',
  queue: 'ingest',
  data,
  jobId: (d) => `ingest-${d.uploadId}`,
  async handle(input, ctx) {
    const outcome = await ingestStage(input, ctx);
    if (outcome.next) await enqueue(ctx.queues, validateJob, input);
    return outcome.result;
  },
  async onFinalFailure({ uploadId }, error, ctx) {
    await endUpload(ctx.em, ctx, uploadId, 'failed', { status: 500, code: 'ingest_failed', message: `Storing the file failed: ${error.message}` });
  },
});

/**
 * The ingest stage without its hand-off: `next` says whether validation should follow. Shared by the
 * `ingest` job and by runUploadPipeline (services/upload/pipeline.ts), which runs the stages in one job.
 */
export async function ingestStage({ uploadId }: z.infer<typeof data>, ctx: JobContext): Promise<StageOutcome> {
  const { em } = ctx;
  const upload = await em.findOne(Upload, { id: uploadId });
  if (!upload) {
    // The upload was deleted with its project while queued: only its staged file is left.
    await ctx.staging.remove(uploadId);
    return { next: false, result: { skipped: 'missing' } };
  }
  if (upload.state !== 'received') {
    // A repeat delivery after the blob was committed: finish what the first one may not have.
    await ctx.staging.remove(uploadId);
    return { next: upload.state === 'processing' && !!upload.blob, result: { skipped: upload.state } };
  }
  if (!(await ctx.staging.exists(uploadId))) {
    await endUpload(em, ctx, uploadId, 'failed', {
      status: 500,
      code: 'staging_lost',
      message: 'The uploaded file was lost before molvault could store it; please upload it again.',
    });
    throw new UnrecoverableError('staging file missing');
  }
  await ctx.job.updateProgress(10);
  const tempFile = await ctx.blobs.tempPath();
  const result = await ctx.cpu.ingest({
    stagingFile: ctx.staging.file(uploadId),
    tempFile,
    maxExpandedBytes: ctx.config.maxExpandedBytes,
    maxExpansionRatio: ctx.config.maxExpansionRatio,
    expectedRawSha256: upload.receivedSha256 ?? undefined,
  });
  if (!result.ok) {
    // A fault of ours (5xx) fails the upload; a fault of the file rejects it.
    const ending = result.status >= 500 ? 'failed' : 'rejected';
    await endUpload(em, ctx, uploadId, ending, { status: result.status, code: result.code, message: result.message });
    throw new UnrecoverableError(result.message);
  }
  const format = resolveFormat(upload.filename, upload.formatHint as Format | null, result.detected, result.sniffReason);
  if ('error' in format) {
    await fs.rm(tempFile, { force: true }); // nothing was committed: the temp file is all there is
    await endUpload(em, ctx, uploadId, 'rejected', format.error);
    throw new UnrecoverableError(format.error.message);
  }
  const quotaRefusal = await em.transactional(async (tx) => {
    await lockBlob(tx, result.sha256);
    // The content is known now: it costs its unpacked size, or nothing when the owner already holds
    // the same bytes. A .gz that unpacks past the quota is refused here, before its blob is kept.
    if (await userHoldsBlob(tx, upload.owner, result.sha256)) await shrinkReservation(tx, uploadId, 0);
    else {
      try {
        await reserve(tx, { userId: upload.owner, uploadId, needed: result.size });
      } catch (error) {
        if (error instanceof QuotaExceededError) return error;
        throw error;
      }
    }
    await ctx.blobs.commit(tempFile, result.sha256);
    await recordBlob(tx, { sha256: result.sha256, size: result.size, storedSize: result.size, mediaType: MEDIA_TYPES[format.format] });
    const row = await tx.findOneOrFail(Upload, { id: uploadId });
    row.blob = result.sha256;
    row.format = format.format;
    row.compression = result.compression ?? null;
    row.state = 'processing';
    if (format.warning) row.validation = { problems: [], warnings: [format.warning], parser: 'sniff', parseMs: 0 };
    return undefined;
  });
  if (quotaRefusal) {
    await fs.rm(tempFile, { force: true });
    await endUpload(em, ctx, uploadId, 'rejected', { status: 507, code: quotaRefusal.code, message: quotaRefusal.message, details: quotaRefusal.details });
    throw new UnrecoverableError(quotaRefusal.message);
  }
  await ctx.staging.remove(uploadId);
  await ctx.job.updateProgress(100);
  return { next: true, result: { sha256: result.sha256, size: result.size, format: format.format, compression: result.compression ?? null } };
}

type FormatDecision =
  | { format: Format; warning?: { code: string; message: string } }
  | { error: { status: number; code: string; message: string; details?: Record<string, unknown> } };

/** The content decides; an explicit format must agree with it, a file extension only earns a warning. */
export function resolveFormat(filename: string, declared: Format | null, detected: Format | undefined, sniffReason?: string): FormatDecision {
  if (!detected) {
    return {
      error: {
        status: 415,
        code: 'unsupported_format',
        message: sniffReason ?? 'molvault does not recognise this file format.',
        details: { supported: FORMATS },
      },
    };
  }
  // A session is stored unopened, so a file that only claims to be one must not slip through as something else.
  const claimsSession = declared === 'cxs' || (!declared && extensionHint(filename) === 'cxs');
  if (claimsSession && detected !== 'cxs') {
    return {
      error: {
        status: 415,
        code: 'not_a_session',
        message: `The file is called a ChimeraX session (${declared ? 'format cxs' : '.cxs'}), but its content is ${FORMAT_LABELS[detected]}, not a session; upload it under its own extension or without format=cxs.`,
        details: { declared: 'cxs', detected },
      },
    };
  }
  if (declared && !formatsCompatible(declared, detected)) {
    return {
      error: {
        status: 415,
        code: 'format_mismatch',
        message: `The upload says the file is ${FORMAT_LABELS[declared]}, but its content is ${FORMAT_LABELS[detected]}.`,
        details: { declared, detected },
      },
    };
  }
  const fromName = extensionHint(filename);
  if (fromName && !formatsCompatible(fromName, detected)) {
    return {
      format: detected,
      warning: {
        code: 'extension_mismatch',
        message: `The file name ends like ${FORMAT_LABELS[fromName]}, but the content is ${FORMAT_LABELS[detected]}; it was read as ${FORMAT_LABELS[detected]}.`,
      },
    };
  }
  return { format: detected };
}
