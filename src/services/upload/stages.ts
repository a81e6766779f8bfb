import type { JobContract } from '../../queue/contract.js';
import { enqueue } from '../../queue/enqueue.js';
import { indexJob, ingestJob, snapshotJob, validateJob } from '../../queue/jobs.js';
import type { WorkContext } from '../../runtime/context.js';
import { pruneStructure } from '../versions/pruning.js';
import { unbundle } from './bundles.js';
import { ingestUploads } from './ingest.js';
import { STAGING_LOST } from './refusals.js';
import { storeUploads } from './snapshot.js';
import { endUpload, loadUploads } from './uploads.js';
import { validateUploads } from './validate.js';

/**
 * One upload's stages, each a batch of one of the set-based stage (ingest.ts, validate.ts,
 * snapshot.ts) behind the checks only a single delivery needs: the upload gone, a repeat delivery
 * of a stage already done. The upload jobs call these and hand the upload on; runUploadPipeline
 * calls them in a row.
 */
export interface StageOutcome {
  /** Whether the next stage should run. */
  next: boolean;
  /** What the stage's job returns. */
  result: unknown;
  /** Set when the upload was refused (and so ended): the reason, which its job fails with, for good. */
  refused?: string;
}

/** Staged upload → unwrapped, hashed, format sniffed, content-addressed into the blob store. */
export async function ingestUpload(ctx: WorkContext, uploadId: string): Promise<StageOutcome> {
  const [upload] = await loadUploads(ctx.em, [uploadId]);
  if (!upload) {
    // The upload was deleted with its project while queued: only its staged file is left.
    await ctx.staging.remove(uploadId);
    return { next: false, result: { skipped: 'missing' } };
  }
  if (upload.state !== 'received') {
    // A repeat delivery after the blob was committed: finish what the first one may not have.
    await ctx.staging.remove(uploadId);
    return { next: upload.state === 'processing' && !!upload.blob_sha256, result: { skipped: upload.state } };
  }
  // An import's file staged in a bundle gets an entry of its own to be taken one by one.
  if (!(await ctx.staging.exists(uploadId)) && !(await unbundle(ctx.em, ctx.staging, [uploadId])).has(uploadId)) {
    await endUpload(ctx.em, ctx, uploadId, 'failed', STAGING_LOST);
    return { next: false, result: { refused: STAGING_LOST.code }, refused: 'staging file missing' };
  }
  await ctx.job?.updateProgress(10);
  const outcome = await ingestUploads(ctx, [upload]);
  if (outcome.errors.has(uploadId)) throw outcome.errors.get(uploadId);
  const refused = outcome.refused.get(uploadId);
  if (refused) return { next: false, result: { refused: refused.error.code }, refused: refused.error.message };
  const ingested = outcome.ingested.get(uploadId);
  await ctx.job?.updateProgress(100);
  if (!ingested) return { next: false, result: { skipped: 'ingested meanwhile' } };
  return { next: true, result: { sha256: ingested.sha256, size: ingested.size, format: ingested.format, compression: ingested.compression } };
}

/** Stored blob → parsed in the CPU pool, checked, summarised; a bad file is rejected with its reasons. */
export async function validateUpload(ctx: WorkContext, uploadId: string): Promise<StageOutcome> {
  const [upload] = await loadUploads(ctx.em, [uploadId]);
  if (!upload || upload.state !== 'processing' || !upload.blob_sha256 || !upload.format) {
    return { next: false, result: { skipped: upload?.state ?? 'missing' } };
  }
  if (upload.summary) return { next: true, result: { skipped: 'already validated' } };
  await ctx.job?.updateProgress(10);
  const outcome = await validateUploads(ctx, [upload]);
  if (outcome.errors.has(uploadId)) throw outcome.errors.get(uploadId);
  const refused = outcome.refused.get(uploadId);
  if (refused) return { next: false, result: { refused: refused.error.code }, refused: refused.error.message };
  await ctx.job?.updateProgress(100);
  return { next: true, result: outcome.validated.get(uploadId) ?? { skipped: 'validated meanwhile' } };
}

export interface SnapshotOutcome {
  structureId?: string;
  version?: number | null;
  skipped?: string;
  gone?: true;
  pruned?: unknown;
}

/** Validated upload → a new version of its structure (see storeUploads). */
export async function snapshotUpload(ctx: WorkContext, uploadId: string): Promise<SnapshotOutcome> {
  const [upload] = await loadUploads(ctx.em, [uploadId]);
  if (!upload) return { skipped: 'missing' };
  if (upload.state === 'processing' && upload.summary) {
    const stored = (await storeUploads(ctx, [uploadId])).get(uploadId);
    if (stored) return stored;
  }
  // Not ready, or stored by another delivery meanwhile.
  const [now] = await loadUploads(ctx.em, [uploadId]);
  if (now?.state !== 'stored') return { skipped: now?.state ?? 'missing' };
  const [row] = await ctx.em.execute<{ version: number | null }[]>('select version from uploads where id = ?', [uploadId]);
  const version = row?.version ?? null;
  // A repeat delivery after a crash: what the first one may not have finished (pruning; the caller indexes).
  if (version && version > 1) await pruneStructure(ctx.em, ctx.blobs, now.structure_id);
  return { structureId: now.structure_id, version, skipped: 'already stored' };
}

/** Hands a stored upload to search: the index job, under an id of the upload's own. */
export async function indexStoredUpload(ctx: WorkContext, upload: { uploadId: string; ownerId: string; structureId: string }): Promise<void> {
  await enqueue(ctx.queues, indexJob, { structureId: upload.structureId, ownerId: upload.ownerId, uploadId: upload.uploadId });
}

/** The job an unfinished upload needs next, read from Postgres alone (reconcile, cleanup). */
export function nextUploadJob(upload: {
  id: string;
  owner: string;
  state: string;
  summary?: unknown;
  structureId: string;
  indexedAt?: Date | null;
}): { contract: JobContract<never>; data: Record<string, string> } | undefined {
  const data = { uploadId: upload.id, ownerId: upload.owner };
  const contract = (c: JobContract<never> | JobContract<unknown>) => c as JobContract<never>;
  if (upload.state === 'received') return { contract: contract(ingestJob), data };
  if (upload.state === 'processing') return { contract: contract(upload.summary ? snapshotJob : validateJob), data };
  if (upload.state === 'stored' && !upload.indexedAt) {
    return { contract: contract(indexJob), data: { structureId: upload.structureId, ownerId: upload.owner, uploadId: upload.id } };
  }
  return undefined;
}
