import type { EntityManager } from '@mikro-orm/postgresql';
import type { QueueSet } from '../../queue/queues.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { deleteBlobIfUnreferenced, lockBlob } from '../quota/blobs.js';
import { refreshUsage } from '../quota/usage.js';
import { enqueueIndex } from '../search/indexing.js';

const DAY_MS = 24 * 3600 * 1000;

/** Blobs the structure's own rows hold (versions, its draft); they go with the structure. */
async function versionBlobs(em: EntityManager, structureId: string): Promise<string[]> {
  const rows = await em.execute<{ sha: string }[]>(
    `select blob_sha256 as sha from structure_versions where structure_id = ?
     union select blob_sha256 from drafts where structure_id = ? order by 1`,
    [structureId, structureId],
  );
  return rows.map((r) => r.sha);
}

/**
 * Deletes a structure for good: its row, versions and draft, and every blob of theirs that nothing else
 * refers to (so usage drops at once). Blob locks first, in hash order, then the structure row.
 * Returns false when the structure was already gone.
 */
export async function purgeStructure(
  em: EntityManager,
  blobs: BlobStore,
  structureId: string,
  options: { onlyIfTrashedBefore?: Date } = {},
): Promise<{ purged: boolean; blobsDeleted: number }> {
  const planned = await versionBlobs(em, structureId);
  return em.transactional(async (tx) => {
    for (const hash of planned) await lockBlob(tx, hash);
    const [row] = await tx.execute<{ id: string; deleted_at: Date | null }[]>('select id, deleted_at from structures where id = ? for update', [structureId]);
    if (!row) return { purged: false, blobsDeleted: 0 };
    // Restored (or trashed again later) since it was picked: not expired after all.
    const cutoff = options.onlyIfTrashedBefore;
    if (cutoff && (!row.deleted_at || new Date(row.deleted_at) > cutoff)) return { purged: false, blobsDeleted: 0 };
    // A version stored after the first look has committed by now (it held the row): lock its blob too.
    const hashes = await versionBlobs(tx, structureId);
    for (const hash of hashes) if (!planned.includes(hash)) await lockBlob(tx, hash);
    await tx.execute('update structures set current_version_id = null where id = ?', [structureId]);
    await tx.execute('delete from structures where id = ?', [structureId]);
    let blobsDeleted = 0;
    for (const hash of hashes) if (await deleteBlobIfUnreferenced(tx, blobs, hash)) blobsDeleted++;
    return { purged: true, blobsDeleted };
  });
}

/**
 * For the cleanup schedule: purges structures that have been in the trash longer than
 * `retentionDays` (config TRASH_RETENTION_DAYS, default 30). With `queues`, each purge also
 * enqueues the index job that drops the structure from search.
 */
export async function purgeExpiredTrash(
  em: EntityManager,
  blobs: BlobStore,
  retentionDays: number,
  queues?: QueueSet,
  now = new Date(),
): Promise<{ purged: string[]; blobsDeleted: number }> {
  const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
  const expired = await em.execute<{ id: string; owner_id: string }[]>(
    'select id, owner_id from structures where deleted_at is not null and deleted_at <= ? order by deleted_at',
    [cutoff],
  );
  const purged: string[] = [];
  const owners = new Set<string>();
  let blobsDeleted = 0;
  for (const { id, owner_id } of expired) {
    const result = await purgeStructure(em, blobs, id, { onlyIfTrashedBefore: cutoff });
    if (!result.purged) continue;
    purged.push(id);
    blobsDeleted += result.blobsDeleted;
    owners.add(owner_id);
    if (queues) await enqueueIndex(queues, id);
  }
  for (const owner of owners) await refreshUsage(em, owner);
  return { purged, blobsDeleted };
}
