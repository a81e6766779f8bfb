import type { Readable } from 'node:stream';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ImportBatch, type ImportError } from '../../entities/ImportBatch.js';
import type { ImportRestore } from '../../entities/ImportItem.js';
import { formatBytes } from '../../lib/bytes.js';
import type { AppContext, WorkContext } from '../../runtime/context.js';
import { type ExportManifest, exportManifest } from '../exports/manifest.js';
import { QuotaExceededError, reserve } from '../quota/quota.js';
import {
  type ArchiveFormat,
  classifyEntry,
  type EntryType,
  ExpansionLimitError,
  expandedTooFar,
  isManifestPath,
  listZip,
  openZipEntry,
  TooManyEntries,
  walkTar,
} from './archive.js';
import { failBatch, type ItemDraft, insertItems, reportProgress, resetBatchReservation } from './batches.js';
import { addBatchChildren, expectedChildren } from './flow.js';
import { importItemId, restoredStructureId } from './ids.js';
import { restoreProjectFields } from './restoreHistory.js';
import { stageStream } from './stage.js';

/** Below this an archive's expansion ratio is not judged: small archives of text compress well. */
const RATIO_FLOOR_BYTES = 64 * 1024 * 1024;
/** The manifest is read into memory; a larger one is not ours. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Quota is reserved ahead in steps of this size while a tar is unpacked. */
const RESERVE_STEP_BYTES = 64 * 1024 * 1024;

/** The batch cannot be imported as a whole; the reason becomes the batch's error. */
export class ImportRefusal extends Error {
  constructor(readonly error: ImportError) {
    super(error.message);
    this.name = 'ImportRefusal';
  }
}

/** How far an archive may unpack: the configured ceiling, and the ratio to its packed size above a floor. */
function expansionLimit(ctx: AppContext, archiveBytes: number): number {
  return Math.min(ctx.config.maxExpandedBytes, Math.max(RATIO_FLOOR_BYTES, archiveBytes * ctx.config.maxExpansionRatio));
}

interface Expansion {
  drafts: ItemDraft[];
  manifest?: Buffer;
  expandedBytes: number;
}

/**
 * Unpacks a staged archive entry by entry into staging (each file under its item's id), never
 * holding an entry in memory; refuses the whole archive (ImportRefusal) past the item count, the
 * expansion limits or the owner's quota. On any failure the files it staged are removed again.
 */
export async function expandArchive(ctx: AppContext, em: EntityManager, batch: ImportBatch): Promise<Expansion> {
  const archive = batch.options.archive;
  const stagedBytes = await ctx.staging.size(batch.id);
  if (!archive || stagedBytes === undefined) {
    throw new ImportRefusal({
      code: 'staging_lost',
      status: 500,
      message: 'The uploaded archive was lost before molvault could unpack it; please send it again.',
    });
  }
  const limit = expansionLimit(ctx, stagedBytes);
  const expansion: Expansion = { drafts: [], expandedBytes: 0 };
  let reserved = 0;
  const holdQuota = async (needed: number, wanted: number) => {
    if (needed <= reserved) return;
    try {
      reserved = await reserve(em.fork(), { userId: batch.owner, uploadId: batch.id, needed, wanted });
    } catch (error) {
      if (error instanceof QuotaExceededError) throw quotaRefusal(error);
      throw error;
    }
  };
  const context: EntryContext = { ctx, batch, expansion, limit };
  try {
    // A zip is read by its central directory, so the archive is a file here (a copy in scratch from S3).
    await ctx.staging.withFile(batch.id, async (file) => {
      if (archive.format === 'zip') await expandZip(context, file, holdQuota);
      else await expandTar(context, file, archive.format, holdQuota);
    });
  } catch (error) {
    for (const draft of expansion.drafts) await ctx.staging.remove(draft.id);
    if (error instanceof TooManyEntries)
      throw new ImportRefusal({ code: 'too_many_items', status: 413, message: error.message, details: { maxItems: error.max } });
    if (error instanceof ExpansionLimitError)
      throw new ImportRefusal({ code: 'archive_too_large', status: 413, message: error.message, details: { limitBytes: limit } });
    if (error instanceof ImportRefusal) throw error;
    if (isCorruptArchive(error)) {
      throw new ImportRefusal({
        code: 'corrupt_archive',
        status: 422,
        message: `The ${archive.format} archive is damaged or truncated and cannot be unpacked (${(error as Error).message}); nothing was imported.`,
      });
    }
    throw error;
  }
  if (expansion.drafts.length === 0) {
    throw new ImportRefusal({ code: 'empty_archive', status: 422, message: 'The archive holds no files.' });
  }
  return expansion;
}

/** Errors of the archive's bytes (not of molvault): a refusal, not a retry. */
function isCorruptArchive(error: unknown): boolean {
  const message = (error as Error)?.message ?? '';
  const code = (error as { code?: string })?.code ?? '';
  return (
    code.startsWith('Z_') ||
    /end of central directory|invalid (signature|comment|relative|local|central|zip)|unexpected end|too many bytes|not enough bytes|truncated|invalid tar|unsupported|compressed size|incorrect header|bad header/i.test(
      message,
    )
  );
}

function quotaRefusal(error: QuotaExceededError): ImportRefusal {
  return new ImportRefusal({
    code: 'quota_exceeded',
    status: 507,
    message: error.message.replace('This upload needs', 'This import needs'),
    details: error.details,
  });
}

interface EntryContext {
  ctx: AppContext;
  batch: ImportBatch;
  expansion: Expansion;
  limit: number;
}

function nextPosition(context: EntryContext, maxItems: number): number {
  const position = context.expansion.drafts.length;
  if (position >= maxItems) throw new TooManyEntries(maxItems);
  return position;
}

/** Records an entry that is not extracted (skipped or refused), with its reason. */
function noteEntry(context: EntryContext, name: string, state: 'skipped' | 'rejected', error: { code: string; message: string }) {
  const position = nextPosition(context, context.ctx.config.imports.maxItems);
  context.expansion.drafts.push({ position, id: importItemId(context.batch.id, position), name, state, error });
}

/** What to do with one entry: stage it, read it as the manifest, or note why not. */
function judge(context: EntryContext, rawName: string, type: EntryType, size: number): { stage: string } | { manifest: true } | undefined {
  const verdict = classifyEntry(rawName, type);
  if (verdict.kind === 'directory') return undefined;
  if (verdict.kind === 'skip') {
    noteEntry(context, verdict.name, 'skipped', verdict.reason);
    return undefined;
  }
  if (isManifestPath(verdict.name) && size <= MAX_MANIFEST_BYTES && !context.expansion.manifest) return { manifest: true };
  const maxFile = context.ctx.config.maxUploadBytes;
  if (size > maxFile) {
    noteEntry(context, verdict.name, 'rejected', {
      code: 'file_too_large',
      message: `The file is larger than the ${formatBytes(maxFile)} this server accepts.`,
    });
    return undefined;
  }
  return { stage: verdict.name };
}

async function stageEntry(context: EntryContext, name: string, stream: Readable, declaredSize: number): Promise<void> {
  const { ctx, batch, expansion, limit } = context;
  const position = nextPosition(context, ctx.config.imports.maxItems);
  const id = importItemId(batch.id, position);
  const before = expansion.expandedBytes;
  const staged = await stageStream(ctx.staging, id, stream, {
    maxBytes: Math.max(declaredSize, 0) || ctx.config.maxUploadBytes,
    tooLarge: () => new ExpansionLimitError(`The entry "${name}" holds more bytes than the archive says it does; nothing was imported.`),
    onBytes: (bytes) => {
      if (before + bytes > limit) throw new ExpansionLimitError(expandedTooFar(limit));
    },
  });
  expansion.expandedBytes += staged.bytes;
  expansion.drafts.push({ position, id, name, state: 'pending', size: staged.bytes, receivedSha256: staged.sha256, receivedCompression: staged.compression });
}

async function readAll(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > max) throw new ExpansionLimitError(`The manifest is larger than ${formatBytes(max)}.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function noteManifest(context: EntryContext, bytes: Buffer) {
  context.expansion.manifest = bytes;
  const position = nextPosition(context, context.ctx.config.imports.maxItems);
  // Recorded as an item so every entry of the archive has a line; what it says is applied after.
  context.expansion.drafts.push({ position, id: importItemId(context.batch.id, position), name: 'manifest.json', state: 'skipped', size: bytes.length });
}

async function expandZip(context: EntryContext, file: string, holdQuota: (needed: number, wanted: number) => Promise<void>) {
  const { ctx, limit } = context;
  const { zip, entries } = await listZip(file, ctx.config.imports.maxItems);
  try {
    // The central directory says what the entries unpack to: limits and quota are decided before extracting anything.
    let declared = 0;
    for (const entry of entries) {
      if (entry.type === 'file' && classifyEntry(entry.rawName, entry.type).kind === 'file' && entry.size <= ctx.config.maxUploadBytes) declared += entry.size;
    }
    if (declared > limit) throw new ExpansionLimitError(expandedTooFar(limit));
    await holdQuota(declared, declared);
    for (const entry of entries) {
      const verdict = classifyEntry(entry.rawName, entry.type);
      if (verdict.kind === 'file' && (entry.encrypted || !entry.decodable)) {
        noteEntry(context, verdict.name, 'rejected', {
          code: entry.encrypted ? 'encrypted_entry' : 'unsupported_compression',
          message: entry.encrypted ? 'The entry is encrypted; molvault cannot read it.' : 'The entry is compressed with a method molvault cannot unpack.',
        });
        continue;
      }
      const decision = judge(context, entry.rawName, entry.type, entry.size);
      if (!decision) continue;
      const stream = await openZipEntry(zip, entry.entry);
      if ('manifest' in decision) noteManifest(context, await readAll(stream, MAX_MANIFEST_BYTES));
      else await stageEntry(context, decision.stage, stream, entry.size);
    }
  } finally {
    zip.close();
  }
}

async function expandTar(
  context: EntryContext,
  file: string,
  format: Exclude<ArchiveFormat, 'zip'>,
  holdQuota: (needed: number, wanted: number) => Promise<void>,
) {
  const { limit } = context;
  // The tar stream itself is the entries plus a header block (and padding, and perhaps a long-name block) each.
  const streamLimit = limit + (context.ctx.config.imports.maxItems + 16) * 4 * 512;
  await walkTar(file, format === 'tar.gz', streamLimit, async (entry) => {
    const decision = judge(context, entry.rawName, entry.type, entry.size);
    if (!decision) return entry.skip();
    if ('manifest' in decision) {
      noteManifest(context, await readAll(entry.stream, MAX_MANIFEST_BYTES));
      return;
    }
    // A tar header states the entry's size before its bytes: limits and quota are checked before it is written.
    const needed = context.expansion.expandedBytes + entry.size;
    if (needed > limit) throw new ExpansionLimitError(expandedTooFar(limit));
    await holdQuota(needed, Math.min(limit, needed + RESERVE_STEP_BYTES));
    await stageEntry(context, decision.stage, entry.stream, entry.size);
  });
}

// ---------------------------------------------------------------------------------------------
// Export manifests: the items of an export archive restore the structures it describes.

/**
 * Applies a manifest found in the archive to the drafts: each listed version's file becomes a
 * version to restore (checked against its sha256), in the manifest's order; listed files missing
 * from the archive get an item saying so. An unusable manifest leaves a plain import, with a note.
 */
export function applyManifest(batch: ImportBatch, expansion: Expansion): ExportManifest | undefined {
  const manifestDraft = expansion.drafts.find((d) => d.name === 'manifest.json' && d.state === 'skipped' && !d.error);
  if (!expansion.manifest || !manifestDraft) return undefined;
  let parsed: ExportManifest | undefined;
  let problem = '';
  try {
    const result = exportManifest.safeParse(JSON.parse(expansion.manifest.toString('utf8')));
    if (result.success) parsed = result.data;
    else
      problem = result.error.issues
        .map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`)
        .slice(0, 5)
        .join('; ');
  } catch (error) {
    problem = `not valid JSON (${(error as Error).message})`;
  }
  if (!parsed) {
    manifestDraft.error = {
      code: 'manifest_invalid',
      message: `manifest.json is not a molvault export manifest (${problem}); the files were imported as plain files.`,
    };
    return undefined;
  }
  manifestDraft.error = {
    code: 'manifest',
    message: `The export manifest: ${parsed.structures.length} structure(s) restored with their names, tags, metadata and versions.`,
  };
  const byName = new Map(expansion.drafts.filter((d) => d.state === 'pending').map((d) => [d.name, d]));
  for (const structure of parsed.structures) {
    const versions = [...structure.versions].sort((a, b) => a.number - b.number);
    const structureId = restoredStructureId(batch.id, structure.id);
    versions.forEach((version, order) => {
      const path = version.path.replace(/^\.\//, '');
      const restore: ImportRestore = {
        key: structure.id,
        structureId,
        order,
        number: version.number,
        message: version.message,
        pinned: version.pinned,
        current: version.current,
        sha256: version.sha256,
        name: structure.name,
        description: structure.description,
        tags: structure.tags,
        metadata: structure.metadata,
        filename: version.filename,
        createdAt: version.createdAt,
        author: version.author ?? null,
        structureCreatedAt: structure.createdAt,
        ...(order === 0 && structure.relationships?.length
          ? { relationships: structure.relationships.map((r) => ({ type: r.type, targetKey: r.targetId, createdAt: r.createdAt })) }
          : {}),
      };
      const draft = byName.get(path);
      if (!draft) {
        const position = expansion.drafts.length;
        expansion.drafts.push({
          position,
          id: importItemId(batch.id, position),
          name: path,
          state: 'rejected',
          restore,
          error: {
            code: 'missing_from_archive',
            message: `The manifest lists version ${version.number} of "${structure.name}" at ${path}, but the archive has no such file.`,
          },
        });
        return;
      }
      byName.delete(path); // one file restores one version
      draft.restore = restore;
      if (draft.receivedSha256 !== version.sha256) {
        draft.state = 'rejected';
        draft.error = {
          code: 'checksum_mismatch',
          message: `The file's sha256 (${draft.receivedSha256}) is not the one the manifest records (${version.sha256}): it was changed or damaged after the export.`,
        };
      }
    });
  }
  return parsed;
}

/**
 * The end of an expansion, in one transaction: the items are recorded, the batch is running and
 * holds exactly the quota of its staged files. Returns false if the batch had moved on meanwhile.
 */
export async function recordExpansion(em: EntityManager, batch: ImportBatch, expansion: Expansion, manifest: ExportManifest | undefined): Promise<boolean> {
  return em.transactional(async (tx) => {
    const row = await tx.findOne(ImportBatch, { id: batch.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!row || row.state !== 'expanding') return false;
    await tx.execute('delete from import_items where batch_id = ?', [batch.id]);
    await insertItems(tx, batch.id, expansion.drafts);
    row.state = 'running';
    if (manifest) row.options = { ...row.options, manifest: { exportId: manifest.exportId, structures: manifest.structures.length } };
    await tx.flush();
    if (manifest) await restoreProjectFields(tx, batch.project, manifest.project);
    await resetBatchReservation(tx, batch.owner, batch.id);
    return true;
  });
}

/**
 * The expansion step of an archive's import: unpacks it entry by entry into staging, records an
 * item per entry, then adds one child per item to the batch job. Idempotent: a crash mid-way leaves
 * the batch `expanding` with no items, and the next run unpacks again into the same item ids; once
 * the items are recorded, a repeated run only re-adds the children (a no-op for existing ones).
 * An archive refused for its own sake fails the batch and is not thrown.
 */
export async function expandImport(ctx: WorkContext, batchId: string): Promise<{ skipped: string } | { refused: string } | { items: number }> {
  let batch = await ctx.em.findOne(ImportBatch, { id: batchId });
  if (!batch) return { skipped: 'missing' };
  if (batch.state === 'expanding') {
    let expansion: Expansion;
    try {
      expansion = await expandArchive(ctx, ctx.em, batch);
    } catch (error) {
      if (!(error instanceof ImportRefusal)) throw error;
      await failBatch(ctx, ctx.em.fork(), batchId, error.error);
      return { refused: error.error.code };
    }
    const manifest = applyManifest(batch, expansion);
    await recordExpansion(ctx.em.fork(), batch, expansion, manifest);
    // Unpacked and recorded: the archive itself is no longer needed.
    await ctx.staging.remove(batchId);
    batch = await ctx.em.fork().findOneOrFail(ImportBatch, { id: batchId });
  }
  if (batch.state !== 'running') return { skipped: batch.state };
  const children = await expectedChildren(ctx.em, batch);
  await addBatchChildren(ctx, batchId, children);
  await ctx.job?.updateProgress(100);
  await reportProgress(ctx, ctx.em.fork(), batchId);
  return { items: children.length };
}

/** An expansion whose job failed for good: the batch fails with the reason. */
export async function failExpansion(ctx: AppContext, em: EntityManager, batchId: string, error: Error): Promise<void> {
  await failBatch(ctx, em, batchId, { code: 'expand_failed', status: 500, message: `Unpacking the archive failed: ${error.message}` });
}
