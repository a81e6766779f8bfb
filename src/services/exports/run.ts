import { rm } from 'node:fs/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { notifyWorkChanged } from '../../db/notify.js';
import { type ArchiveKind, ExportArchive, type ExportProblem } from '../../entities/ExportArchive.js';
import { sessionConversionRefusal } from '../../formats/session.js';
import { FORMAT_LABELS, type Format } from '../../formats/types.js';
import { formatDuration } from '../../lib/bytes.js';
import type { WorkContext } from '../../runtime/context.js';
import { scratchFile } from '../../storage/create.js';
import { conversionState, requestConversion } from '../conversions/requests.js';
import { assertBlobsStored, lockBlob, recordBlob } from '../quota/blobs.js';
import { isChargedForBlob } from '../quota/quota.js';
import { lockQuota, refreshUsage } from '../quota/usage.js';
import { ARCHIVE_MEDIA_TYPES, BlobIntegrityError, writeArchive } from './archiveWriter.js';
import { buildManifest, collectExportContent, type ExportContent, type ExportedFile, structureFolders, versionPath } from './content.js';
import { ExportFailure, exportQuotaFailure, failExport, quotaLeft } from './exports.js';
import { MANIFEST_FILENAME } from './manifest.js';

/** Formats whose bytes are compressed already: deflating them again in a zip only costs time. */
const PACKED_FORMATS: readonly Format[] = ['bcif', 'cxs'];

/**
 * Writes an export archive: the owner's structures of the project or selection, each exported
 * version as a file (the stored bytes, or converted through the convert queue), and manifest.json,
 * streamed into a blob-store temp file while hashed, then committed as a blob the export row
 * holds (charged as `exports` until it expires). Idempotent: a completed export is left alone; a
 * run that dies mid-write leaves only its temp file (swept by cleanup) and the retry starts over.
 *
 * A failure retrying cannot fix (an ExportFailure, a damaged blob) is recorded on the row and
 * thrown as an ExportFailure; anything else is thrown as is, for the caller to retry. Whatever the
 * outcome, whoever waits on the export (POST /v1/exports with Prefer: wait) is woken.
 */
export async function writeExport(ctx: WorkContext, exportId: string) {
  try {
    return await runExport(ctx, exportId);
  } catch (error) {
    const failure =
      error instanceof ExportFailure ? error : error instanceof BlobIntegrityError ? new ExportFailure(500, error.code, error.message) : undefined;
    if (!failure) throw error;
    await failExport(ctx.em.fork(), exportId, failure.toRecord());
    ctx.log.warn({ exportId, code: failure.code }, `export failed: ${failure.message}`);
    throw failure;
  } finally {
    await notifyWorkChanged(ctx.em, exportId).catch(() => {});
  }
}

async function runExport(ctx: WorkContext, exportId: string) {
  const { em } = ctx;
  const row = await em.findOne(ExportArchive, { id: exportId });
  if (!row) return { exportId, skipped: 'the export was deleted' };
  // Delivered again after it finished (or failed, or expired): nothing to do.
  if (row.state !== 'pending' && row.state !== 'running') return { exportId, skipped: `the export is ${row.state}`, sha256: row.blob ?? null };
  await em.execute(`update export_archives set state = 'running', updated_at = now() where id = ? and state in ('pending', 'running')`, [exportId]);
  if (!row.project && !row.selection) {
    throw new ExportFailure(409, 'project_deleted', 'The project was deleted before its export could be written.');
  }

  const content = await collectExportContent(em, row);
  const problems: ExportProblem[] = content.missing.map((id) => ({
    code: 'structure_gone',
    message: `Structure ${id} was deleted or moved to the trash before the export was written, so it is not in the archive.`,
    structureId: id,
  }));
  if (row.selection && content.structures.length === 0) {
    throw new ExportFailure(409, 'nothing_to_export', 'None of the selected structures is still there to export (deleted or in the trash).', {
      missing: content.missing,
    });
  }
  const files = row.format === 'original' ? originalFiles(content) : await convertedFiles(ctx, row, content, problems);
  const manifest = buildManifest(row, content, files);
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);

  const total = files.length + 1;
  let lastReport = 0;
  const report = (done: number) => {
    const now = Date.now();
    if (now - lastReport < 250 && done < total) return;
    lastReport = now;
    void ctx.job?.updateProgress({ phase: 'writing', done, total }).catch(() => {});
  };
  report(0);
  const tempFile = await scratchFile(ctx.config, 'export');
  try {
    const written = await writeArchive(
      row.archive as ArchiveKind,
      tempFile,
      ctx.blobs,
      { path: MANIFEST_FILENAME, content: manifestBytes, mtime: row.createdAt },
      files.map((file) => ({
        path: file.path,
        sha256: file.sha256,
        size: file.size,
        mtime: file.version.createdAt,
        compress: !PACKED_FORMATS.includes(file.format),
      })),
      (index) => report(index + 1),
    );
    const committed = await commitArchive(ctx, row, written, total, problems, tempFile);
    await ctx.job?.updateProgress({ phase: 'done', done: total, total });
    if (!committed) return { exportId, skipped: 'the export was deleted or finished elsewhere while it was written' };
    ctx.log.info({ exportId, bytes: written.size, files: total, problems: problems.length }, 'export written');
    return { exportId, sha256: written.sha256, size: written.size, files: total, problems };
  } finally {
    // A committed file is the store's; anything left is a failed or superseded attempt.
    await rm(tempFile, { force: true });
  }
}

/** Every version as stored: its own blob under `<folder>/v<n>.<format>`. */
function originalFiles(content: ExportContent): ExportedFile[] {
  const folders = structureFolders(content.structures);
  return content.structures.flatMap((structure) =>
    structure.versions.map((version) => ({
      structure,
      version,
      path: versionPath(folders.get(structure.id) as string, version.number, version.format),
      sha256: version.sha256,
      size: version.size,
      format: version.format,
      conversion: null,
    })),
  );
}

interface Converted {
  sha256: string;
  size: number;
  engine: string;
  engineVersion: string | null;
}

/**
 * Every version in the export's target format. Versions already in it go as stored; the others
 * use their cached derivative or are converted through the convert queue (one job per distinct
 * source blob, enqueued at once, run in parallel by the convert workers, waited for here). A
 * version no installed engine can convert, or whose conversion fails, is exported in its original
 * format and listed in the export's problems: one awkward file does not sink a whole project.
 */
async function convertedFiles(ctx: WorkContext, row: ExportArchive, content: ExportContent, problems: ExportProblem[]): Promise<ExportedFile[]> {
  const target = row.format as Format;
  const folders = structureFolders(content.structures);
  const converted = new Map<string, Converted>();
  /** Source blob → why it stays as it is. */
  const refused = new Map<string, { code: string; message: string }>();
  const waiting = new Map<string, string>(); // source blob → convert job id
  const sources = new Map<string, { format: Format; dialect?: string }>();
  for (const structure of content.structures) {
    for (const version of structure.versions) if (version.format !== target) sources.set(version.sha256, { format: version.format, dialect: version.dialect });
  }
  for (const [sha256, source] of sources) {
    const refusal = sessionConversionRefusal(source.format, target);
    if (refusal) {
      refused.set(sha256, { code: refusal.code, message: refusal.message });
      continue;
    }
    const plan = ctx.engineCatalog.plan(source, target);
    if (!plan.ok) {
      refused.set(sha256, { code: 'conversion_unavailable', message: plan.message });
      continue;
    }
    const requested = await requestConversion(ctx, ctx.em.fork(), sha256, target, row.owner);
    if (requested.state === 'ready') converted.set(sha256, await describe(ctx, requested.derivation));
    else if (requested.state === 'failed') refused.set(sha256, { code: 'conversion_failed', message: requested.job.failedReason || 'The conversion failed.' });
    else waiting.set(sha256, requested.jobId);
  }
  await waitForConversions(ctx, target, waiting, converted, refused, sources.size, row.owner);

  const files: ExportedFile[] = [];
  for (const structure of content.structures) {
    const folder = folders.get(structure.id) as string;
    for (const version of structure.versions) {
      const made = version.format === target ? undefined : converted.get(version.sha256);
      if (version.format !== target && !made) {
        const why = refused.get(version.sha256) ?? { code: 'conversion_failed', message: 'The conversion did not finish.' };
        problems.push({
          code: why.code,
          message: `${structure.name} v${version.number} stays ${FORMAT_LABELS[version.format]}: ${why.message}`,
          structureId: structure.id,
          version: version.number,
        });
      }
      const format = made ? target : version.format;
      files.push({
        structure,
        version,
        path: versionPath(folder, version.number, format),
        sha256: made?.sha256 ?? version.sha256,
        size: made?.size ?? version.size,
        format,
        conversion: made ? { engine: made.engine, engineVersion: made.engineVersion } : null,
      });
    }
  }
  return files;
}

async function describe(ctx: WorkContext, derivation: { blob: string; engine: string; engineVersion: string }): Promise<Converted> {
  const [blob] = await ctx.em.execute<{ size: string }[]>('select size from blobs where sha256 = ?', [derivation.blob]);
  return { sha256: derivation.blob, size: Number(blob?.size ?? 0), engine: derivation.engine, engineVersion: derivation.engineVersion ?? null };
}

/**
 * Waits for the conversion jobs, waking on each job's end (Postgres notification) or every
 * second. A job Redis lost, or whose derivative was collected right after it finished, is asked
 * for again (twice at most). Gives up when none of them has run or finished for longer than an
 * engine may take: then no worker is taking conversions, and saying so beats waiting forever.
 */
async function waitForConversions(
  ctx: WorkContext,
  target: Format,
  waiting: Map<string, string>,
  converted: Map<string, Converted>,
  refused: Map<string, { code: string; message: string }>,
  total: number,
  ownerId: string,
) {
  const stallLimitMs = ctx.config.engines.timeoutMs + 60_000;
  let lastMovement = Date.now();
  const retries = new Map<string, number>();
  while (waiting.size > 0) {
    let moved = false;
    for (const sha256 of [...waiting.keys()]) {
      const known = await conversionState(ctx, ctx.em.fork(), sha256, target);
      if (known.state === 'ready') {
        converted.set(sha256, await describe(ctx, known.derivation));
        waiting.delete(sha256);
        moved = true;
      } else if (known.state === 'failed') {
        refused.set(sha256, { code: 'conversion_failed', message: known.job.failedReason || 'The conversion failed.' });
        waiting.delete(sha256);
        moved = true;
      } else {
        const state = await known.job?.getState();
        if (state === 'active') moved = true;
        if (!known.job || state === 'completed') {
          const tries = (retries.get(sha256) ?? 0) + 1;
          retries.set(sha256, tries);
          if (tries > 2) {
            refused.set(sha256, { code: 'conversion_failed', message: 'The converted file kept disappearing before it could be read.' });
            waiting.delete(sha256);
          } else {
            await requestConversion(ctx, ctx.em.fork(), sha256, target, ownerId);
          }
          moved = true;
        }
      }
    }
    await ctx.job?.updateProgress({ phase: 'converting', done: total - waiting.size, total }).catch(() => {});
    if (waiting.size === 0) break;
    if (moved) lastMovement = Date.now();
    else if (Date.now() - lastMovement > stallLimitMs) {
      throw new ExportFailure(
        503,
        'conversion_stalled',
        `${waiting.size} conversion(s) to ${FORMAT_LABELS[target]} waited ${formatDuration(stallLimitMs)} without starting; is a worker running the convert queue? Ask again later, or export the original format.`,
      );
    }
    await Promise.race([...waiting.values()].map((jobId) => ctx.workEvents.wait(jobId, 1000)));
  }
}

/**
 * Moves the written archive into the blob store and marks the export completed. The archive is
 * put before the transaction, never inside it (assertBlobsStored says why), after a first look that
 * the export is still wanted and fits the owner's quota, so a refused archive is normally not kept
 * at all. The transaction then takes the blob lock, the export row and the owner's quota and checks
 * exactly: the archive must fit, or the export fails with 507's reason; its blob, put in vain when
 * the quota shrank in between, is garbage collection's. Returns false when the export was deleted
 * (or finished by another delivery) meanwhile; its blob then goes again unless something holds it.
 */
async function commitArchive(
  ctx: WorkContext,
  row: ExportArchive,
  written: { sha256: string; size: number },
  fileCount: number,
  problems: ExportProblem[],
  tempFile: string,
): Promise<boolean> {
  const wanted = (state: string | undefined) => state === 'pending' || state === 'running';
  const checkQuota = async (em: EntityManager) => {
    if (await isChargedForBlob(em, row.owner, written.sha256)) return;
    const figures = await quotaLeft(em, row.owner);
    if (written.size > figures.leftBytes) throw exportQuotaFailure(figures, written.size, false);
  };
  const look = ctx.em.fork();
  const [before] = await look.execute<{ state: string }[]>('select state from export_archives where id = ?', [row.id]);
  if (!wanted(before?.state)) return false;
  await checkQuota(look);
  await ctx.blobs.putFile(tempFile, { sha256: written.sha256, size: written.size }, { move: true });
  return ctx.em.fork().transactional(async (tx) => {
    await lockBlob(tx, written.sha256);
    await assertBlobsStored(ctx.blobs, [written.sha256]);
    const [current] = await tx.execute<{ state: string }[]>('select state from export_archives where id = ? for update', [row.id]);
    if (!wanted(current?.state)) return false;
    await lockQuota(tx, row.owner);
    await checkQuota(tx);
    await recordBlob(tx, { sha256: written.sha256, size: written.size, storedSize: written.size, mediaType: ARCHIVE_MEDIA_TYPES[row.archive as ArchiveKind] });
    const finishedAt = new Date();
    await tx.execute(
      `update export_archives
          set state = 'completed', blob_sha256 = ?, size = ?, file_count = ?, problems = ?::jsonb, error = null,
              finished_at = ?, expires_at = ?, updated_at = now()
        where id = ?`,
      [written.sha256, written.size, fileCount, JSON.stringify(problems), finishedAt, new Date(finishedAt.getTime() + ctx.config.exportRetentionMs), row.id],
    );
    await refreshUsage(tx, row.owner);
    return true;
  });
}
