import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { z } from 'zod';
import type { ImportBatch, ImportError, ImportOptions } from '../../entities/ImportBatch.js';
import { formatBytes } from '../../lib/bytes.js';
import type { AppContext } from '../../runtime/context.js';
import { detectStagedArchive } from '../../services/imports/archive.js';
import { createBatch, discardRefusedBatch, failBatch, type ItemDraft, touchBatch } from '../../services/imports/batches.js';
import { importItemId } from '../../services/imports/ids.js';
import { launchBatch } from '../../services/imports/launch.js';
import { normalizePdbId } from '../../services/imports/pdb.js';
import { StagingLimitError, stageStream } from '../../services/imports/stage.js';
import { shrinkReservation } from '../../services/quota/quota.js';
import { ApiError } from '../errors.js';
import { receiveImportFiles } from '../http/multipartImport.js';
import { drainRefused } from '../http/uploadBody.js';
import { checkedMetadata } from '../metadata.js';
import { metadataSchema, tagsSchema } from '../schemas/common.js';
import { assertSafeFields, parseMetadataField, text } from '../text.js';
import { quotaHold } from './quota.js';
import { refuseWhenStorageFull, storageFullRefusal } from './storageFull.js';

const MULTIPART_OVERHEAD = 1024 * 1024;

const importFields = z.object({
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
});

const pdbImportBody = z.object({
  pdbIds: z.array(text().max(64)).min(1, 'list at least one PDB id'),
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
});

/** `tags` (repeated or comma-separated) and `metadata` (JSON text) from multipart fields or the query string. */
function parseImportFields(fields: Record<string, string[] | string | undefined>): z.infer<typeof importFields> {
  assertSafeFields(fields, 'The import fields');
  const list = (name: string) => {
    const value = fields[name];
    return value === undefined ? [] : Array.isArray(value) ? value : [value];
  };
  const metadataText = list('metadata').at(-1);
  let metadata: unknown;
  if (metadataText) metadata = parseMetadataField(metadataText);
  const tags = list('tags')
    .flatMap((t) => t.split(','))
    .map((t) => t.trim())
    .filter(Boolean);
  const result = importFields.safeParse({ tags: tags.length ? tags : undefined, metadata });
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ApiError(400, 'invalid_request', `The import fields are not valid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}.`, { issues });
  }
  return result.data;
}

function asImportError(error: unknown): ImportError {
  if (error instanceof ApiError)
    return { code: error.code, status: error.status, message: error.message, ...(error.details ? { details: error.details } : {}) };
  return { code: 'receive_failed', status: 500, message: 'molvault hit an unexpected error while receiving the files.' };
}

/** A refused request leaves nothing: the batch still receiving goes entirely; one already launched is failed with the reason. */
async function refuseBatch(app: AppContext, em: EntityManager, batchId: string, error: unknown, stagedIds: string[] = []) {
  if (!(await discardRefusedBatch(app, em, batchId, stagedIds))) await failBatch(app, em, batchId, asImportError(error), stagedIds);
}

/** A JSON list of PDB ids: recorded as items and fetched by the workers. Returns the batch, running. */
export async function acceptPdbImport(app: AppContext, payerId: string, projectId: string, body: unknown): Promise<ImportBatch> {
  const parsed = pdbImportBody.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ApiError(400, 'invalid_request', `The request body is not valid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}.`, { issues });
  }
  const { pdbIds, tags, metadata } = parsed.data;
  const invalid = pdbIds.filter((id) => !normalizePdbId(id));
  if (invalid.length > 0) {
    throw new ApiError(
      400,
      'invalid_pdb_ids',
      `Not PDB ids: ${invalid.slice(0, 10).join(', ')}${invalid.length > 10 ? ` and ${invalid.length - 10} more` : ''} (a PDB id is a digit and three letters or digits, e.g. 1CRN, or an extended id such as pdb_00001crn).`,
      { invalid },
    );
  }
  const maxItems = app.config.imports.maxItems;
  if (pdbIds.length > maxItems) throw new ApiError(413, 'too_many_items', `One import takes at most ${maxItems} PDB ids; split the list.`, { maxItems });
  await checkedMetadata(app.orm.em.fork(), projectId, metadata ?? {});
  await refuseWhenStorageFull(app);
  const batchId = await createBatch(app.orm.em.fork(), { ownerId: payerId, projectId, source: 'pdb_ids' });
  const seen = new Set<string>();
  const items: ItemDraft[] = pdbIds.map((raw, position) => {
    const id = normalizePdbId(raw) as string;
    const draft: ItemDraft = { position, id: importItemId(batchId, position), name: id, state: 'pending' };
    if (seen.has(id)) {
      draft.state = 'skipped';
      draft.error = { code: 'duplicate_in_request', message: `${id} is listed more than once; it is fetched once.` };
    }
    seen.add(id);
    return draft;
  });
  return launchBatch(app, app.orm.em.fork(), batchId, payerId, { state: 'running', source: 'pdb_ids', options: { tags, metadata }, items });
}

/**
 * Many files in one multipart request, or one archive in it (recognised by its bytes). Returns the
 * batch, running (or expanding); a refusal fails the batch and drains the request before it is thrown.
 */
/** `payerId`: the project's owner of record, charged for the import; `actorId`: the caller. */
export async function acceptMultipartImport(app: AppContext, koa: Context, payerId: string, projectId: string, actorId: string): Promise<ImportBatch> {
  try {
    // A full disk refuses at once: no batch, no staging, no quota held.
    await refuseWhenStorageFull(app, Number(koa.get('content-length') || 0));
  } catch (error) {
    drainRefused(koa);
    throw error;
  }
  const batchId = await createBatch(app.orm.em.fork(), { ownerId: payerId, projectId, source: 'files' });
  const em = app.orm.em.fork();
  const hold = quotaHold(app, payerId, batchId, actorId);
  const quota = { reserve: hold.reserve, reserved: 0 };
  let received: Awaited<ReturnType<typeof receiveImportFiles>>;
  try {
    const declared = Number(koa.get('content-length') || 0);
    const maxTotal = app.config.maxExpandedBytes;
    if (declared > maxTotal + MULTIPART_OVERHEAD) {
      throw new ApiError(413, 'import_too_large', `The files add up to more than the ${formatBytes(maxTotal)} one import accepts.`, { maxBytes: maxTotal });
    }
    // The whole request is held against the quota before a byte is stored: over quota, nothing is.
    if (declared > 0) quota.reserved = await hold.reserve(declared, declared);
    received = await receiveImportFiles(
      koa,
      app,
      batchId,
      { maxItems: app.config.imports.maxItems, maxFileBytes: app.config.maxUploadBytes, maxTotalBytes: maxTotal },
      quota,
      () => touchBatch(em, batchId),
    );
  } catch (caught) {
    const error = storageFullRefusal(caught);
    drainRefused(koa);
    await refuseBatch(app, em, batchId, error);
    throw error;
  }
  const staged = received.items.filter((item) => item.state === 'pending');
  try {
    if (received.items.length === 0) {
      throw new ApiError(400, 'missing_file', 'The import has no files: send them in multipart fields named "file" (the file name may be a relative path).');
    }
    const fields = parseImportFields(received.fields);
    const options: ImportOptions = { tags: fields.tags, metadata: fields.metadata };
    const only = staged.length === 1 && received.items.length === 1 ? staged[0] : undefined;
    const archive = only ? await detectStagedArchive(app.staging, only.id) : undefined;
    if (only && archive) {
      // One archive sent as a file: it is unpacked by a worker, like an archive sent as the body.
      await app.staging.move(only.id, batchId);
      await shrinkReservation(em, batchId, only.size ?? 0);
      options.archive = { format: archive, bytes: only.size ?? 0, filename: only.name };
      return await launchBatch(app, app.orm.em.fork(), batchId, payerId, { state: 'expanding', source: 'archive', options, items: [] });
    }
    await checkedMetadata(em, projectId, fields.metadata ?? {});
    return await launchBatch(app, app.orm.em.fork(), batchId, payerId, { state: 'running', source: 'files', options, items: received.items });
  } catch (error) {
    await refuseBatch(app, em, batchId, error, [...received.items.map((i) => i.id), ...received.bundleIds]);
    throw error;
  }
}

/**
 * One archive as the request body (zip, tar, tar.gz); `tags` and `metadata` in the query string.
 * Returns the batch, expanding; a refusal fails the batch and drains the request before it is thrown.
 */
export async function acceptArchiveImport(app: AppContext, koa: Context, payerId: string, projectId: string, actorId: string): Promise<ImportBatch> {
  let fields: z.infer<typeof importFields>;
  try {
    fields = parseImportFields(koa.query as Record<string, string | string[]>);
    await refuseWhenStorageFull(app, Number(koa.get('content-length') || 0));
  } catch (error) {
    drainRefused(koa);
    throw error;
  }
  const batchId = await createBatch(app.orm.em.fork(), { ownerId: payerId, projectId, source: 'archive' });
  const em = app.orm.em.fork();
  const hold = quotaHold(app, payerId, batchId, actorId);
  const max = app.config.maxUploadBytes;
  try {
    const declared = Number(koa.get('content-length') || 0);
    if (declared > max) throw new ApiError(413, 'file_too_large', `The archive is larger than the ${formatBytes(max)} this server accepts.`, { maxBytes: max });
    let reserved = declared > 0 ? await hold.reserve(declared, declared) : 0;
    let lastKeepAlive = Date.now();
    const staged = await stageStream(app.staging, batchId, koa.req, {
      maxBytes: max,
      tooLarge: () => new StagingLimitError('file_too_large', `The archive is larger than the ${formatBytes(max)} this server accepts.`),
      onBytes: async (bytes) => {
        if (bytes > reserved) reserved = await hold.reserve(bytes, Math.min(max, bytes + 64 * 1024 * 1024));
        if (Date.now() - lastKeepAlive > 60_000) {
          lastKeepAlive = Date.now();
          await touchBatch(em, batchId);
        }
      },
    });
    const format = await detectStagedArchive(app.staging, batchId);
    if (!format) {
      throw new ApiError(
        415,
        'not_an_archive',
        'The body is not a zip, tar or tar.gz archive. Send many files as multipart/form-data (fields named "file"), or a list of PDB ids as JSON {"pdbIds": [...]}.',
      );
    }
    await shrinkReservation(em, batchId, staged.bytes);
    const filename = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(koa.get('content-disposition'))?.[1] ?? `archive.${format}`;
    return await launchBatch(app, app.orm.em.fork(), batchId, payerId, {
      state: 'expanding',
      source: 'archive',
      options: { tags: fields.tags, metadata: fields.metadata, archive: { format, bytes: staged.bytes, filename } },
      items: [],
    });
  } catch (error) {
    drainRefused(koa);
    const refusal = error instanceof StagingLimitError ? new ApiError(413, 'file_too_large', error.message, { maxBytes: max }) : storageFullRefusal(error);
    await refuseBatch(app, em, batchId, refusal);
    throw refusal;
  }
}
