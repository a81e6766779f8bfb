import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ImportBatch } from '../../entities/ImportBatch.js';
import { ImportItem, type ImportItemError, type ImportItemState, TERMINAL_IMPORT_ITEM_STATES } from '../../entities/ImportItem.js';
import { TERMINAL_UPLOAD_STATES, Upload, type UploadError, type UploadParams } from '../../entities/Upload.js';
import type { WorkContext } from '../../runtime/context.js';
import { metadataProblems, projectMetadataSchema } from '../metadata/metadata.js';
import { QuotaExceededError, reserve } from '../quota/quota.js';
import { enqueueIndex } from '../search/indexing.js';
import { unbundle } from '../upload/bundles.js';
import { runUploadPipeline } from '../upload/pipeline.js';
import { createUploads } from '../upload/uploads.js';
import { setPinned } from '../versions/versions.js';
import { displayName } from './archive.js';
import { endItem, resetBatchReservation } from './batches.js';
import { claimContent, claimRefusalError } from './claims.js';
import { fetchPdbEntry, pdbFilename } from './pdb.js';
import { restoreVersionHistory } from './restoreHistory.js';
import { stagedCompressionOf } from './stage.js';

/** Codes of an upload ended because its content is already in the project: the item is skipped, not rejected. */
const DUPLICATE_CODES = new Set(['already_stored', 'duplicate_content']);

/** The structure file name of an item: the last part of its path, at most 255 characters. */
export function itemFilename(name: string): string {
  return (displayName(name).split('/').pop() || 'upload').slice(0, 255);
}

const isTerminal = (state: ImportItemState) => TERMINAL_IMPORT_ITEM_STATES.includes(state);

/**
 * One child job of a batch: the item becomes an upload run through the pipeline inline, and its
 * outcome is recorded on the item. For the versions of a structure restored from an export
 * manifest, the job stores them all, in order. Idempotent: every step looks at Postgres first.
 */
export async function processImportItem(ctx: WorkContext, input: { batchId: string; itemId: string }): Promise<ImportItemState | 'missing'> {
  const em = ctx.em;
  const batch = await em.findOne(ImportBatch, { id: input.batchId });
  const item = await em.findOne(ImportItem, { id: input.itemId, batch: input.batchId });
  if (!batch || !item) return 'missing';
  if (batch.state !== 'running') return item.state;
  if (item.restore) {
    await restoreStructure(ctx, batch, item.restore.key);
  } else {
    await processPlainItem(ctx, batch, item.id);
  }
  return (await em.fork().findOneOrFail(ImportItem, { id: item.id })).state;
}

async function freshItem(em: EntityManager, itemId: string): Promise<ImportItem> {
  return em.fork().findOneOrFail(ImportItem, { id: itemId });
}

/**
 * Ends an item and frees what it held. An item that never became an upload still has its bytes in
 * the batch's reservation (`pending`); one whose upload has ended holds nothing more (the upload's
 * own reservation went with it), so the batch's reservation is left alone.
 */
async function finishItem(
  ctx: WorkContext,
  batch: ImportBatch,
  itemId: string,
  state: 'stored' | 'rejected' | 'failed' | 'skipped',
  fields: { error?: ImportItemError | null; structureId?: string | null; sha256?: string | null },
  from: 'pending' | 'upload' = 'pending',
): Promise<void> {
  await ctx.em.fork().transactional(async (tx) => {
    if ((await endItem(tx, itemId, state, fields)) && from === 'pending') await resetBatchReservation(tx, batch.owner, batch.id);
  });
  await ctx.staging.remove(itemId);
}

async function processPlainItem(ctx: WorkContext, batch: ImportBatch, itemId: string): Promise<void> {
  let item = await freshItem(ctx.em, itemId);
  if (isTerminal(item.state)) return;
  let filename = itemFilename(item.name);
  if (batch.source === 'pdb_ids') {
    const { imports } = ctx.config;
    filename = pdbFilename(imports.pdbMirrorUrl, item.name);
    // Fetched when not yet recorded as fetched (a crash may have left a partial file: it is fetched again).
    if (!item.upload && (!item.receivedSha256 || !(await ctx.staging.exists(item.id)))) {
      const fetched = await fetchPdbEntry(ctx.staging, item.name, item.id, {
        mirrorUrl: imports.pdbMirrorUrl,
        timeoutMs: imports.pdbFetchTimeoutMs,
        attempts: imports.pdbFetchAttempts,
        backoffMs: imports.pdbFetchBackoffMs,
        concurrency: imports.pdbFetchConcurrency,
        maxBytes: ctx.config.maxUploadBytes,
      });
      if (!fetched.ok) {
        await finishItem(ctx, batch, item.id, 'failed', { error: fetched.error });
        return;
      }
      await ctx.em.execute('update import_items set size = ?, received_sha256 = ?, updated_at = now() where id = ?', [fetched.bytes, fetched.sha256, item.id]);
      item = await freshItem(ctx.em, itemId);
    }
  }
  if (!item.upload) {
    // A file staged in a bundle gets an entry of its own to be taken one by one.
    const staged = (await ctx.staging.exists(item.id)) || (item.stagedBundle !== null && (await unbundle(ctx.em, ctx.staging, [item.id])).has(item.id));
    if (!staged || !item.receivedSha256) {
      await finishItem(ctx, batch, item.id, 'failed', {
        error: { code: 'staging_lost', message: 'The file was lost before molvault could store it; import it again.' },
      });
      return;
    }
    if (batch.source === 'archive') {
      // Files and PDB ids had the request's metadata checked when it came; an archive's items are checked here.
      const problems = metadataProblems(await projectMetadataSchema(ctx.em, batch.project), batch.options.metadata ?? {});
      if (problems.length > 0) {
        await finishItem(ctx, batch, item.id, 'rejected', {
          error: {
            code: 'metadata_schema_violation',
            message: `The metadata does not fit the project's metadata schema: ${problems.map((p) => p.message).join('; ')}.`,
            details: { problems },
          },
        });
        return;
      }
    }
    // Content that is not compressed is known by its received hash: a duplicate is skipped before it costs anything.
    const compression = await stagedCompressionOf(ctx.staging, item.id, item.receivedCompression ?? null);
    const compressed = compression !== undefined && compression !== 'none';
    const started = await startUpload(ctx, batch, item, { filename, claim: !compressed, params: batchParams(batch) });
    if (!started) return;
  }
  // Content claimed before ingest (its received hash was its content hash) needs no second claim.
  const claimed = (await freshItem(ctx.em, item.id)).sha256 !== null;
  await runUploadPipeline(
    ctx,
    { uploadId: item.id, ownerId: batch.owner },
    claimed
      ? {}
      : {
          afterIngest: async (upload) => {
            const sha = upload.blob as string;
            return ctx.em.fork().transactional(async (tx) => {
              const refusal = await claimContent(tx, batch, { id: item.id, name: item.name, sha256: sha });
              return refusal && claimRefusalError(refusal);
            });
          },
        },
  );
  await recordOutcome(ctx, batch, item.id);
}

/** Tags and metadata the request asked for, applied to every item. */
export function batchParams(batch: ImportBatch): UploadParams {
  const params: UploadParams = {};
  if (batch.options.tags?.length) params.tags = batch.options.tags;
  if (batch.options.metadata && Object.keys(batch.options.metadata).length > 0) params.metadata = batch.options.metadata;
  return params;
}

/**
 * Makes the item an upload (same id), in one transaction with its claim and its quota: the bytes
 * move from the batch's reservation to the item's own. Returns false when the item ended instead
 * (a duplicate, over quota).
 */
async function startUpload(
  ctx: WorkContext,
  batch: ImportBatch,
  item: ImportItem,
  options: { filename: string; claim: boolean; params: UploadParams; structureId?: string; createsStructure?: boolean },
): Promise<boolean> {
  let outcome: 'started' | 'ended' | { over: QuotaExceededError };
  try {
    outcome = await ctx.em.fork().transactional(async (tx): Promise<'started' | 'ended'> => {
      const row = await tx.findOne(ImportItem, { id: item.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!row || isTerminal(row.state)) return 'ended';
      if (row.upload) return 'started';
      const sha256 = row.receivedSha256 as string;
      if (options.claim) {
        const duplicate = await claimContent(tx, batch, { id: row.id, name: row.name, sha256 });
        if (duplicate) {
          await endItem(tx, row.id, 'skipped', {
            error: { code: duplicate.code, message: duplicate.message },
            structureId: duplicate.structureId ?? null,
            sha256,
          });
          await resetBatchReservation(tx, batch.owner, batch.id);
          return 'ended';
        }
      }
      await createUploads(tx, [
        {
          id: row.id,
          ownerId: batch.owner,
          projectId: batch.project,
          structureId: options.structureId,
          createsStructure: options.createsStructure ?? true,
          filename: options.filename,
          receivedBytes: row.size ?? 0,
          receivedSha256: sha256,
          params: options.params,
        },
      ]);
      await tx.execute(`update import_items set state = 'processing', upload_id = ?, updated_at = now() where id = ?`, [row.id, row.id]);
      // The batch stops holding this item's bytes and the item holds them itself (ingest adjusts them to the unpacked content).
      // A refusal throws, which rolls all of this back.
      await resetBatchReservation(tx, batch.owner, batch.id);
      await reserve(tx, { userId: batch.owner, uploadId: row.id, needed: row.size ?? 0 });
      return 'started';
    });
  } catch (error) {
    if (!(error instanceof QuotaExceededError)) throw error;
    outcome = { over: error };
  }
  if (outcome === 'started') return true;
  if (outcome !== 'ended') {
    // Over quota (a fetched PDB entry, or usage grew since the batch was accepted): the transaction rolled back.
    const error = outcome.over;
    await finishItem(ctx, batch, item.id, 'rejected', { error: { code: error.code, message: error.message, details: error.details } });
    return false;
  }
  await ctx.staging.remove(item.id);
  return false;
}

/** How an ended upload ends its item: stored, or refused with the reason (a duplicate found after unpacking: skipped). */
export function itemEnding(upload: { state: string; structureId: string; blob: string | null; error: UploadError | null }) {
  if (upload.state === 'stored') return { state: 'stored' as const, structureId: upload.structureId, sha256: upload.blob, error: null };
  const error = upload.error ?? { status: 500, code: 'failed', message: 'The file could not be stored.' };
  const duplicate = upload.state === 'rejected' && DUPLICATE_CODES.has(error.code);
  return {
    state: duplicate ? ('skipped' as const) : (upload.state as 'rejected' | 'failed'),
    structureId: (error.details?.structureId as string | undefined) ?? null,
    sha256: null,
    error: itemError(error),
  };
}

/** Copies the upload's end onto the item. */
async function recordOutcome(ctx: WorkContext, batch: ImportBatch, itemId: string, afterStored?: (upload: Upload) => Promise<void>): Promise<void> {
  const upload = await ctx.em.fork().findOne(Upload, { id: itemId });
  if (!upload) throw new Error(`import item ${itemId} lost its upload`);
  if (!TERMINAL_UPLOAD_STATES.includes(upload.state)) {
    // Still received or processing: a stage of ours failed in a way that should be retried.
    throw new Error(`the upload of import item ${itemId} stopped in state ${upload.state}`);
  }
  if (upload.state === 'stored') await afterStored?.(upload);
  const { state, ...fields } = itemEnding({ ...upload, blob: upload.blob ?? null, error: upload.error ?? null });
  await finishItem(ctx, batch, itemId, state, fields, 'upload');
}

/** An upload's error as an item's: code and sentence, and the problems list when there is one. */
function itemError(error: UploadError): ImportItemError {
  const problems = error.details?.problems;
  return { code: error.code, message: error.message, ...(Array.isArray(problems) ? { details: { problems: problems.slice(0, 20) } } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Restoring a structure from an export manifest: its versions, in order, by one job.

async function restoreStructure(ctx: WorkContext, batch: ImportBatch, key: string): Promise<void> {
  const ids = await ctx.em.execute<{ id: string }[]>(
    `select id from import_items where batch_id = ? and restore->>'key' = ? order by (restore->>'order')::int, position`,
    [batch.id, key],
  );
  const items = await Promise.all(ids.map((row) => freshItem(ctx.em, row.id)));
  if (items.length === 0) return;
  const untouched = items.every((i) => !i.upload && i.state !== 'stored');
  if (untouched && (await skipRestoredAlready(ctx, batch, items))) return;
  for (const { id } of items) {
    const item = await freshItem(ctx.em, id);
    if (isTerminal(item.state)) continue;
    await restoreVersion(ctx, batch, item);
  }
}

/**
 * A re-run of the same export archive: the structure counts as restored when the project has a
 * live structure of the same name whose current version holds the manifest's current content.
 * Then none of its versions is imported again.
 */
async function skipRestoredAlready(ctx: WorkContext, batch: ImportBatch, items: ImportItem[]): Promise<boolean> {
  const restore = items[0].restore;
  if (!restore) return false;
  const current = items.find((i) => i.restore?.current) ?? items[items.length - 1];
  const [existing] = await ctx.em.execute<{ id: string }[]>(
    `select s.id from structures s join structure_versions v on v.id = s.current_version_id
      where s.project_id = ? and s.deleted_at is null and s.name = ? and v.blob_sha256 = ? limit 1`,
    [batch.project, restore.name, current.restore?.sha256],
  );
  if (!existing) return false;
  for (const item of items) {
    await finishItem(ctx, batch, item.id, 'skipped', {
      structureId: existing.id,
      error: { code: 'already_stored', message: `This structure ("${restore.name}") is already restored in this project; it was not imported again.` },
    });
  }
  return true;
}

async function restoreVersion(ctx: WorkContext, batch: ImportBatch, item: ImportItem): Promise<void> {
  const restore = item.restore;
  if (!restore) return;
  if (!item.upload) {
    if (!(await ctx.staging.exists(item.id)) || !item.receivedSha256) {
      await finishItem(ctx, batch, item.id, 'failed', {
        error: { code: 'staging_lost', message: 'The file was lost before molvault could store it; import it again.' },
      });
      return;
    }
    const [exists] = await ctx.em.execute<{ id: string }[]>('select id from structures where id = ?', [restore.structureId]);
    const createsStructure = !exists;
    let params: UploadParams = { message: restore.message ?? undefined };
    if (createsStructure) {
      const metadata = { ...(batch.options.metadata ?? {}), ...restore.metadata };
      const problems = metadataProblems(await projectMetadataSchema(ctx.em, batch.project), metadata);
      if (problems.length > 0) {
        await finishItem(ctx, batch, item.id, 'rejected', {
          error: {
            code: 'metadata_schema_violation',
            message: `The structure's metadata does not fit the project's metadata schema: ${problems.map((p) => p.message).join('; ')}.`,
            details: { problems },
          },
        });
        return;
      }
      params = {
        name: restore.name.slice(0, 255) || undefined,
        description: restore.description,
        tags: [...new Set([...restore.tags, ...(batch.options.tags ?? [])])],
        metadata,
        message: restore.message ?? undefined,
      };
    }
    const started = await startUpload(ctx, batch, item, {
      filename: restore.filename ? itemFilename(restore.filename) : itemFilename(item.name),
      claim: false,
      params,
      structureId: restore.structureId,
      createsStructure,
    });
    if (!started) return;
  }
  await runUploadPipeline(ctx, { uploadId: item.id, ownerId: batch.owner });
  await recordOutcome(ctx, batch, item.id, async (upload) => {
    // Before the item says stored, so a crash in between restores and pins on the next delivery.
    await restoreVersionHistory(ctx.em.fork(), upload.id, upload.structureId, restore);
    if (restore.pinned) await setPinned(ctx.em.fork(), upload.structureId, restore.number, true);
    // The structure's creation time is part of its search document.
    if (restore.order === 0 && restore.structureCreatedAt) await enqueueIndex(ctx.queues, upload.structureId);
  });
}
