import type { UploadError } from '../../entities/Upload.js';
import type { ParseOutcome, Problem } from '../../formats/types.js';
import { TaskTimeoutError } from '../../pool/cpuPool.js';
import type { QuotaExceededError } from '../quota/quota.js';

/** Every way an upload can end without a version, each worded once. */

/** The structure a new version was for was deleted while the version was being stored. */
export const STRUCTURE_DELETED: UploadError = {
  status: 409,
  code: 'structure_deleted',
  message: 'The structure was deleted while this version was being stored.',
};

export const STAGING_LOST: UploadError = {
  status: 500,
  code: 'staging_lost',
  message: 'The uploaded file was lost before molvault could store it; please upload it again.',
};

/** An upload's stages, by the job that runs each (a stage that failed for good names itself). */
export type UploadStage = 'ingest' | 'validate' | 'snapshot';

/** A stage that failed for good (its retries exhausted): molvault is at fault, and says where. */
export function stageFailed(stage: UploadStage, error: Error): UploadError {
  const what = { ingest: 'Storing the file', validate: 'Checking the file', snapshot: 'Saving the version' }[stage];
  return { status: 500, code: `${stage}_failed`, message: `${what} failed: ${error.message}` };
}

/** The unpacked content does not fit the owner's quota. */
export function overQuota(error: QuotaExceededError): UploadError {
  return { status: 507, code: error.code, message: error.message, details: error.details };
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

/** A CPU pool worker that died under the task (memory limit, crash). */
export function isWorkerDeath(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return /ERR_WORKER_OUT_OF_MEMORY|out of memory|worker.*(exited|terminated)/i.test(message);
}
