import type { EntityManager } from '@mikro-orm/postgresql';
import { notifyWorkChanged } from '../../db/notify.js';
import type { ArchiveKind, ExportError } from '../../entities/ExportArchive.js';
import { formatBytes } from '../../lib/bytes.js';
import { Refusal } from '../../lib/refusal.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { deleteBlobIfUnreferenced, lockBlob } from '../quota/blobs.js';
import { refreshUsage } from '../quota/usage.js';
import { ARCHIVE_EXTENSIONS } from './archiveWriter.js';

/** Job ids of exports: `export-<export id>`. */

/**
 * An export that cannot be written, for a reason retrying will not change (over quota, a damaged
 * blob, nothing left to export). The job records it on the row and fails at once.
 */
export class ExportFailure extends Refusal {
  toRecord(): ExportError & { status: number } {
    return { status: this.status, code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/**
 * A compressed archive is smaller than the files in it, by how much depends on the files. Text
 * structure files rarely shrink more than tenfold, so an export whose files would need more than
 * ten times the space left is refused when it is asked for; the exact check is made when the
 * finished archive is committed, before it is charged.
 */
export const BEST_CASE_COMPRESSION = 10;

/** Quota left for the user: quota − charged bytes − bytes held by uploads in flight (fresh figures). */
export async function quotaLeft(
  em: EntityManager,
  userId: string,
): Promise<{ quotaBytes: number; usedBytes: number; reservedBytes: number; leftBytes: number }> {
  const [row] = await em.execute<{ quota_bytes: string; reserved: string | null }[]>(
    'select u.quota_bytes, (select sum(bytes) from quota_reservations r where r.owner_id = u.id) as reserved from users u where u.id = ?',
    [userId],
  );
  const usedBytes = (await refreshUsage(em, userId)).usedBytes;
  const quotaBytes = Number(row?.quota_bytes ?? 0);
  const reservedBytes = Number(row?.reserved ?? 0);
  return { quotaBytes, usedBytes, reservedBytes, leftBytes: Math.max(0, quotaBytes - usedBytes - reservedBytes) };
}

/** The 507 an export over quota answers with (same details as an upload's). */
export function exportQuotaFailure(
  figures: { quotaBytes: number; usedBytes: number; reservedBytes: number; leftBytes: number },
  requestedBytes: number,
  estimate: boolean,
): ExportFailure {
  const need = estimate
    ? `at least ${formatBytes(requestedBytes)} (its ${formatBytes(requestedBytes * BEST_CASE_COMPRESSION)} of files, compressed)`
    : formatBytes(requestedBytes);
  return new ExportFailure(
    507,
    'quota_exceeded',
    `This export needs ${need}, but only ${formatBytes(figures.leftBytes)} of your ${formatBytes(figures.quotaBytes)} quota is left; ` +
      'export archives count against your quota until they expire. Delete older exports or other files you no longer need, export fewer structures, or ask an administrator for more space.',
    { quotaBytes: figures.quotaBytes, usedBytes: figures.usedBytes, reservedBytes: figures.reservedBytes, requestedBytes },
  );
}

/** `<project name>-<YYYY-MM-DD>.zip`, or `molvault-export-<date>.tar.gz` for a selection across projects. */
export function exportFilename(projectName: string | null, archive: ArchiveKind, date: Date): string {
  const base = projectName
    ? projectName
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '')
        .replace(/[^A-Za-z0-9._-]+/g, '-')
        .replace(/-+/g, '-')
        .replace(/^[.-]+|[.-]+$/g, '')
        .slice(0, 100) || 'project'
    : 'molvault-export';
  return `${base}-${date.toISOString().slice(0, 10)}${ARCHIVE_EXTENSIONS[archive]}`;
}

/** Records a failure the user can read; only an export still under way can fail. */
export async function failExport(em: EntityManager, exportId: string, error: ExportError & { status?: number }): Promise<boolean> {
  const [row] = await em.execute<{ id: string }[]>(
    `update export_archives set state = 'failed', error = ?::jsonb, finished_at = now(), updated_at = now()
      where id = ? and state in ('pending', 'running') returning id`,
    [JSON.stringify(error), exportId],
  );
  return row !== undefined;
}

/** An export whose job failed for good (retries exhausted, or found so by reconcile): failed with the reason, and whoever waits told. */
export async function failExportJob(em: EntityManager, exportId: string, error: Error): Promise<void> {
  await failExport(em, exportId, { status: 500, code: 'export_failed', message: `The export could not be written: ${error.message}` });
  await notifyWorkChanged(em, exportId).catch(() => {});
}

/**
 * Lets go of an export's archive: the blob is deleted unless something else holds it, and the
 * owner's usage drops. `remove` deletes the row too (DELETE /v1/exports/:id); otherwise the row
 * stays, marked expired, so a download says 410. Blob lock first, then the row, then the quota
 * (inside refreshUsage), as everywhere. Returns the bytes freed on disk, or undefined when the
 * row was gone or (for an expiry) no longer due.
 */
export async function releaseExport(
  em: EntityManager,
  blobs: BlobStore,
  exportId: string,
  options: { remove: boolean; expiredBefore?: Date },
): Promise<{ bytesFreed: number } | undefined> {
  const [planned] = await em.execute<{ blob_sha256: string | null }[]>('select blob_sha256 from export_archives where id = ?', [exportId]);
  if (!planned) return undefined;
  return em.transactional(async (tx) => {
    if (planned.blob_sha256) await lockBlob(tx, planned.blob_sha256);
    const [row] = await tx.execute<{ owner_id: string; blob_sha256: string | null; state: string; expires_at: Date }[]>(
      'select owner_id, blob_sha256, state, expires_at from export_archives where id = ? for update',
      [exportId],
    );
    if (!row) return undefined;
    if (options.expiredBefore && (row.state !== 'completed' || new Date(row.expires_at) > options.expiredBefore)) return undefined;
    // Completed between the first look and the lock: lock the blob it holds now as well.
    if (row.blob_sha256 && row.blob_sha256 !== planned.blob_sha256) await lockBlob(tx, row.blob_sha256);
    if (options.remove) await tx.execute('delete from export_archives where id = ?', [exportId]);
    else {
      await tx.execute(`update export_archives set state = 'expired', blob_sha256 = null, updated_at = now() where id = ?`, [exportId]);
    }
    let bytesFreed = 0;
    if (row.blob_sha256) {
      const [blob] = await tx.execute<{ size: string }[]>('select size from blobs where sha256 = ?', [row.blob_sha256]);
      if (await deleteBlobIfUnreferenced(tx, blobs, row.blob_sha256)) bytesFreed = Number(blob?.size ?? 0);
    }
    await refreshUsage(tx, row.owner_id);
    return { bytesFreed };
  });
}

/** Completed exports whose time is up (for the cleanup schedule and its dry run). */
export async function dueExports(em: EntityManager, now: Date, limit = 10_000) {
  const rows = await em.execute<{ id: string; owner_id: string; size: string; expires_at: Date }[]>(
    `select id, owner_id, size, expires_at from export_archives where state = 'completed' and expires_at <= ? order by expires_at limit ?`,
    [now, limit],
  );
  return rows.map((r) => ({ id: r.id, ownerId: r.owner_id, size: Number(r.size), expiresAt: new Date(r.expires_at) }));
}
