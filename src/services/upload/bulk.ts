import { sqlArray } from '../../db/arrays.js';
import type { UploadError } from '../../entities/Upload.js';
import { enqueue } from '../../queue/enqueue.js';
import { indexJob } from '../../queue/jobs.js';
import type { WorkContext } from '../../runtime/context.js';
import { ingestUploads } from './ingest.js';
import { type PipelineHooks, runUploadPipeline } from './pipeline.js';
import { storeUploads } from './snapshot.js';
import { endUploads, loadUploads } from './uploads.js';
import { validateUploads } from './validate.js';

/**
 * The upload stages for many uploads at once (a bulk import's chunk): the same set-based stages the
 * one-by-one path runs with a batch of one (ingest.ts, validate.ts, snapshot.ts), so the same
 * states, checks, refusals and statements, with each stage's database work done for the whole
 * chunk in a handful of statements instead of several per file. Small files are parsed while they
 * are unpacked. An upload whose stage meets an error of ours goes through runUploadPipeline one by
 * one. Every step is guarded by the upload's state, so a repeat delivery of the chunk resumes where
 * the last one stopped and never stores a file twice. Returns each upload's state.
 *
 * `afterIngest` is the batch form of the one-by-one pipeline's hook (pipeline.ts): `judge` is called
 * once with those of its `uploads` this call ingested (their content's sha256 now known), before any
 * is validated; the uploads it answers for end as rejected with that reason (a bulk import skipping
 * compressed files whose content the project already holds). Its uploads are not parsed on ingest:
 * one it refuses would have been parsed for nothing, and a refusal comes before validation's, as on
 * the one-by-one path.
 */
export async function runUploadBatch(
  ctx: WorkContext,
  uploadIds: readonly string[],
  batchKey: string,
  options: {
    stagedFiles?: ReadonlyMap<string, string>;
    afterIngest?: {
      uploads: ReadonlySet<string>;
      judge: (ingested: ReadonlyMap<string, { sha256: string }>) => Promise<ReadonlyMap<string, UploadError>>;
    };
  } = {},
): Promise<Map<string, string>> {
  const singles = new Set<string>();
  const inBulk = (state: string) => async () => (await loadUploads(ctx.em, uploadIds)).filter((row) => !singles.has(row.id) && row.state === state);

  const { afterIngest } = options;
  const ingested = await ingestUploads(ctx, await inBulk('received')(), {
    parse: (row) => !afterIngest?.uploads.has(row.id),
    stagedFiles: options.stagedFiles,
  });
  for (const [uploadId, error] of ingested.errors) {
    ctx.log.warn({ err: error, uploadId }, 'bulk ingest: taking this upload one by one');
    singles.add(uploadId);
  }
  const judged = new Map([...ingested.ingested].filter(([id]) => afterIngest?.uploads.has(id)));
  const refusedAfterIngest = afterIngest && judged.size > 0 ? await afterIngest.judge(judged) : new Map<string, UploadError>();
  await endUploads(
    ctx.em,
    ctx,
    [...refusedAfterIngest].map(([uploadId, error]) => ({ uploadId, state: 'rejected' as const, error })),
  );
  const parsed = new Map([...ingested.ingested].filter(([id]) => !refusedAfterIngest.has(id)).map(([id, item]) => [id, item.parsed]));
  const validated = await validateUploads(
    ctx,
    (await inBulk('processing')()).filter((row) => !row.summary && row.blob_sha256 && row.format),
    parsed,
  );
  for (const uploadId of validated.errors.keys()) singles.add(uploadId);
  await storeUploads(
    ctx,
    (await inBulk('processing')()).filter((row) => row.summary).map((row) => row.id),
  );
  // One index job for every stored upload of the chunk not yet searchable (this delivery's, or an earlier one's that stopped short).
  const unindexed = await ctx.em.execute<{ id: string; structure_id: string }[]>(
    `select id, structure_id from uploads where id = any(?::uuid[]) and state = 'stored' and indexed_at is null order by id`,
    [sqlArray(uploadIds.filter((id) => !singles.has(id)))],
  );
  if (unindexed.length > 0) {
    await enqueue(ctx.queues, indexJob, {
      structureId: unindexed[0].structure_id,
      structureIds: unindexed.map((u) => u.structure_id),
      uploadIds: unindexed.map((u) => u.id),
      stamp: `${batchKey}${Date.now().toString(36)}`,
    });
  }
  const owners = new Map((await loadUploads(ctx.em, [...singles])).map((row) => [row.id, row.owner_id]));
  // The same hook, for one upload at a time (an upload whose ingest failed here was not yet judged).
  const hooksOf = (uploadId: string): PipelineHooks =>
    afterIngest?.uploads.has(uploadId)
      ? { afterIngest: async (upload) => (await afterIngest.judge(new Map([[upload.id, { sha256: upload.blob as string }]]))).get(upload.id) }
      : {};
  for (const uploadId of singles) {
    const ownerId = owners.get(uploadId);
    if (ownerId) await runUploadPipeline(ctx, { uploadId, ownerId }, hooksOf(uploadId));
  }
  const final = await loadUploads(ctx.em, uploadIds);
  return new Map(final.map((row) => [row.id, row.state]));
}
