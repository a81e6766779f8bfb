import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { Upload, type UploadError } from '../../entities/Upload.js';
import type { Format, ParseOutcome, Problem } from '../../formats/types.js';
import { TaskTimeoutError } from '../../pool/cpuPool.js';
import { endUpload } from '../../services/upload/uploads.js';
import { defineJob, type JobContext, type StageOutcome } from '../define.js';
import { enqueue } from '../enqueue.js';
import { snapshotJob } from './snapshot.js';

const data = z.object({ uploadId: z.uuid(), ownerId: z.uuid() });

/** Stored blob → parsed in piscina, checked, summarised; a bad file is rejected with its reasons. */
export const validateJob = defineJob({
  name: 'validate',
  queue: 'validate',
  data,
  jobId: (d) => `validate-${d.uploadId}`,
  async handle(input, ctx) {
    const outcome = await validateStage(input, ctx);
    if (outcome.next) await enqueue(ctx.queues, snapshotJob, input);
    return outcome.result;
  },
  async onFinalFailure({ uploadId }, error, ctx) {
    await endUpload(ctx.em, ctx, uploadId, 'failed', { status: 500, code: 'validate_failed', message: `Checking the file failed: ${error.message}` });
  },
});

/** The validate stage without its hand-off: `next` says whether the snapshot should follow. */
export async function validateStage({ uploadId }: z.infer<typeof data>, ctx: JobContext): Promise<StageOutcome> {
  const { em } = ctx;
  const upload = await em.findOne(Upload, { id: uploadId });
  if (!upload || upload.state !== 'processing' || !upload.blob || !upload.format) return { next: false, result: { skipped: upload?.state ?? 'missing' } };
  if (upload.summary) return { next: true, result: { skipped: 'already validated' } };
  await ctx.job.updateProgress(10);
  let outcome: Awaited<ReturnType<typeof ctx.cpu.parse>>;
  try {
    outcome = await ctx.cpu.parse({ path: ctx.blobs.localPath(upload.blob), format: upload.format as Format });
  } catch (error) {
    const aborted = parseAborted(error);
    if (!aborted) throw error;
    await endUpload(em, ctx, uploadId, 'rejected', aborted);
    throw new UnrecoverableError(aborted.message);
  }
  const earlierWarnings: Problem[] = upload.validation?.warnings ?? [];
  if (!outcome.ok) {
    await endUpload(em, ctx, uploadId, 'rejected', invalidStructure(outcome, earlierWarnings));
    throw new UnrecoverableError(outcome.message);
  }
  upload.summary = outcome.summary;
  upload.kind = outcome.kind;
  upload.validation = { ...outcome.report, warnings: [...earlierWarnings, ...outcome.report.warnings] };
  await em.flush();
  await ctx.job.updateProgress(100);
  return { next: true, result: { atoms: outcome.summary.atoms, warnings: upload.validation.warnings.length } };
}

/** A parse that hung or exhausted the parser: the file would do so again, so it is refused rather than retried. */
export function parseAborted(error: unknown): UploadError | undefined {
  if (!(error instanceof TaskTimeoutError) && !isWorkerDeath(error)) return undefined;
  const message = error instanceof TaskTimeoutError ? error.message : `Reading the file exhausted the parser's memory limit (${(error as Error).message}).`;
  return { status: 422, code: 'parse_aborted', message, details: { problems: [{ code: 'parse_aborted', message }] } };
}

/** The refusal of a file the parser or the checks found unsound, with every problem and warning. */
export function invalidStructure(outcome: Extract<ParseOutcome, { ok: false }>, earlierWarnings: Problem[]): UploadError {
  return {
    status: outcome.status,
    code: outcome.code,
    message: outcome.message,
    details: { problems: outcome.report.problems, warnings: [...earlierWarnings, ...outcome.report.warnings] },
  };
}

export function isWorkerDeath(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return /ERR_WORKER_OUT_OF_MEMORY|out of memory|worker.*(exited|terminated)/i.test(message);
}
