import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { formatBytes } from '../../lib/bytes.js';
import type { AppContext } from '../../runtime/context.js';
import type { ListedBlob } from '../../storage/blobStore.js';
import { allBlobReferencesSql, BLOB_PUT_HOLD } from '../quota/blobReferences.js';
import { deleteBlobIfUnreferenced, lockBlob } from '../quota/blobs.js';

const ITEMS_KEPT = 200;

export interface GcReport {
  dryRun: boolean;
  blobs: {
    /** Unreferenced blobs seen for the first time this run (their grace period starts now). */
    newlyOrphaned: number;
    /** Blobs marked orphaned earlier that something refers to again. */
    rescued: number;
    removed: number;
    bytesFreed: number;
    /** Candidates that were referenced again by the time their lock was held. */
    keptReferenced: number;
    items: { sha256: string; bytes: number }[];
  };
  files: {
    /** Files in the blob store with no blobs row (removed or not). */
    orphans: number;
    orphanBytes: number;
    removed: number;
    bytesFreed: number;
    /** Files whose name is not a sha256 at all: reported, never touched. */
    strays: string[];
    items: { path: string; bytes: number }[];
  };
}

const notReferenced = (alias: string) => `not exists (select 1 from (${allBlobReferencesSql()}) refs where refs.blob_sha256 = ${alias}.sha256)`;

/**
 * Garbage collection, both ways.
 *
 * Blobs: a blob nothing in BLOB_REFERENCE_SOURCES refers to is first marked (orphaned_at); it is
 * deleted once both its creation and that mark are older than GC_GRACE_MS, so a blob just written
 * (or just dropped) always has the full grace period. Each deletion holds the blob's lock and
 * re-checks the references (deleteBlobIfUnreferenced): work that put the same bytes just before
 * (blobs are put before the transaction that records them) waits for the lock, finds them gone
 * (assertBlobsStored) and is done again, and a reference recorded before the lock was taken keeps
 * the blob alive. There is no window in which a reference points at nothing.
 *
 * Files: a file under blobs/sha256 with no row (a crash between the rename and the commit, or a
 * lost row) is reported, and removed once its mtime is older than the grace period, under the
 * same lock and after checking again that no row appeared.
 */
export async function collectGarbage(
  ctx: AppContext & { em: EntityManager },
  options: { dryRun?: boolean; now?: Date; graceMs?: number; batchSize?: number } = {},
): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const now = options.now ?? new Date();
  const cutoff = new Date(now.getTime() - (options.graceMs ?? ctx.config.gcGraceMs));
  const batchSize = options.batchSize ?? ctx.config.gcBatchSize;
  const em = ctx.em;
  const report: GcReport = {
    dryRun,
    blobs: { newlyOrphaned: 0, rescued: 0, removed: 0, bytesFreed: 0, keptReferenced: 0, items: [] },
    files: { orphans: 0, orphanBytes: 0, removed: 0, bytesFreed: 0, strays: [], items: [] },
  };

  // 1. Marks: referenced again → unmarked; unreferenced and unmarked → marked now.
  if (dryRun) {
    const [row] = await em.execute<{ n: string }[]>(`select count(*) as n from blobs b where b.orphaned_at is null and ${notReferenced('b')}`);
    report.blobs.newlyOrphaned = Number(row?.n ?? 0);
  } else {
    report.blobs.rescued = await countUpdated(em, `update blobs b set orphaned_at = null where b.orphaned_at is not null and not (${notReferenced('b')})`, []);
    report.blobs.newlyOrphaned = await countUpdated(em, `update blobs b set orphaned_at = ? where b.orphaned_at is null and ${notReferenced('b')}`, [now]);
  }

  // 2. Deletions, in batches, each blob under its own lock and transaction.
  let after = '';
  for (;;) {
    const batch = await em.execute<{ sha256: string; size: string }[]>(
      `select b.sha256, b.size from blobs b
        where b.created_at < ? and b.orphaned_at < ? and b.sha256 > ? and ${notReferenced('b')}
        order by b.sha256 limit ?`,
      [cutoff, cutoff, after, batchSize],
    );
    for (const blob of batch) {
      const bytes = Number(blob.size);
      if (dryRun) {
        keep(report.blobs.items, { sha256: blob.sha256, bytes });
        report.blobs.removed++;
        report.blobs.bytesFreed += bytes;
        continue;
      }
      const deleted = await em.fork().transactional(async (tx) => {
        await lockBlob(tx, blob.sha256);
        // Still an old orphan now that we hold the lock? (deleteBlobIfUnreferenced checks the references.)
        const [still] = await tx.execute<{ n: string }[]>('select count(*) as n from blobs where sha256 = ? and orphaned_at < ?', [blob.sha256, cutoff]);
        if (Number(still?.n ?? 0) === 0) return false;
        return deleteBlobIfUnreferenced(tx, ctx.blobs, blob.sha256);
      });
      if (deleted) {
        keep(report.blobs.items, { sha256: blob.sha256, bytes });
        report.blobs.removed++;
        report.blobs.bytesFreed += bytes;
      } else report.blobs.keptReferenced++;
    }
    if (batch.length < batchSize) break;
    after = batch[batch.length - 1].sha256;
  }

  // 3. Files without rows.
  let pending: ListedBlob[] = [];
  const flush = async () => {
    const names = pending;
    pending = [];
    if (names.length === 0) return;
    const known = new Set(
      (await em.execute<{ sha256: string }[]>('select sha256 from blobs where sha256 = any(?::text[])', [sqlArray(names.map((n) => n.sha256))])).map(
        (r) => r.sha256,
      ),
    );
    for (const { sha256, size, modifiedAt } of names) {
      if (known.has(sha256)) continue;
      report.files.orphans++;
      report.files.orphanBytes += size;
      if (modifiedAt >= cutoff) continue;
      if (!dryRun) {
        const removed = await em.fork().transactional(async (tx) => {
          await lockBlob(tx, sha256);
          // A row, or a put announced and not yet recorded (the object may be an old orphan that put found there).
          const [row] = await tx.execute<{ kept: boolean }[]>(
            `select exists (select 1 from blobs where sha256 = ?)
                 or exists (select 1 from blob_put_intents where sha256 = ? and created_at > now() - interval '${BLOB_PUT_HOLD}') as kept`,
            [sha256, sha256],
          );
          if (row?.kept) return false;
          await ctx.blobs.delete(sha256);
          return true;
        });
        if (!removed) continue;
      }
      report.files.removed++;
      report.files.bytesFreed += size;
      keep(report.files.items, { path: ctx.blobs.location(sha256), bytes: size });
    }
  };
  // A listing of the store (a directory walk, or S3 ListObjectsV2 pages), checked against the rows a thousand at a time.
  for await (const listed of ctx.blobs.list()) {
    pending.push(listed);
    if (pending.length >= 1000) await flush();
  }
  await flush();
  if (ctx.blobs.strays) {
    for await (const stray of ctx.blobs.strays()) {
      if (report.files.strays.length >= ITEMS_KEPT) break;
      report.files.strays.push(stray);
    }
  }

  const summary = `gc ${dryRun ? '(dry run) would remove' : 'removed'} ${report.blobs.removed} unreferenced blob(s) (${formatBytes(report.blobs.bytesFreed)}) and ${report.files.removed} file(s) without a row (${formatBytes(report.files.bytesFreed)})`;
  ctx.log.info(
    { dryRun, blobs: { ...report.blobs, items: report.blobs.items.slice(0, 20) }, files: { ...report.files, items: report.files.items.slice(0, 20) } },
    summary,
  );
  if (report.files.orphans > report.files.removed) {
    ctx.log.warn({ orphans: report.files.orphans, bytes: report.files.orphanBytes }, 'gc: blob files without a row (kept until the grace period has passed)');
  }
  return report;
}

async function countUpdated(em: EntityManager, update: string, params: unknown[]): Promise<number> {
  const [row] = await em.execute<{ n: string }[]>(`with changed as (${update} returning 1) select count(*) as n from changed`, params);
  return Number(row?.n ?? 0);
}

function keep<T>(list: T[], item: T) {
  if (list.length < ITEMS_KEPT) list.push(item);
}
