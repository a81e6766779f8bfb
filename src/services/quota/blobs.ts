import type { EntityManager } from '@mikro-orm/postgresql';
import { LOCK_KEYS, lockAll } from '../../db/locks.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { allBlobReferencesSql } from './blobReferences.js';

/**
 * Serialises everything that creates or drops a reference to one blob: a transaction-scoped
 * advisory lock keyed on the hash. Without it a rejected upload could delete bytes that a
 * concurrent upload of the same content has just claimed.
 */
export async function lockBlob(em: EntityManager, sha256: string): Promise<void> {
  await lockAll(em, LOCK_KEYS.blob, [sha256]);
}

/** lockBlob for several blobs in one statement, taken in hash order. */
export async function lockBlobs(em: EntityManager, hashes: readonly string[]): Promise<void> {
  await lockAll(em, LOCK_KEYS.blob, hashes);
}

export interface BlobRecord {
  sha256: string;
  size: number;
  storedSize: number;
  mediaType: string;
}

/** Records a committed blob (idempotent; clears an orphan mark). Call inside a transaction holding lockBlob. */
export async function recordBlob(em: EntityManager, blob: BlobRecord) {
  await recordBlobs(em, [blob]);
}

/** recordBlob for many blobs in one statement. */
export async function recordBlobs(em: EntityManager, blobs: readonly BlobRecord[]) {
  if (blobs.length === 0) return;
  // Wanted again: garbage collection's grace period starts over.
  await em.execute(
    `insert into blobs (sha256, size, stored_size, media_type, created_at)
     select x.sha256, x.size, x."storedSize", x."mediaType", now() from jsonb_to_recordset(?::jsonb) as x(sha256 text, size bigint, "storedSize" bigint, "mediaType" text)
     on conflict (sha256) do update set orphaned_at = null`,
    [JSON.stringify(blobs)],
  );
}

/**
 * Deletes a blob's row and bytes when nothing listed in BLOB_REFERENCE_SOURCES refers to it. Call inside a transaction that holds lockBlob, so no reference can appear
 * between the check and the delete. Returns whether it was deleted.
 */
export async function deleteBlobIfUnreferenced(tx: EntityManager, blobs: BlobStore, sha256: string): Promise<boolean> {
  const [refs] = await tx.execute<{ n: string }[]>(`select count(*) as n from (${allBlobReferencesSql()}) refs where refs.blob_sha256 = ?`, [sha256]);
  if (Number(refs?.n ?? 0) > 0) return false;
  await tx.execute('update uploads set blob_sha256 = null where blob_sha256 = ?', [sha256]);
  await tx.execute('delete from blobs where sha256 = ?', [sha256]);
  // Deleted while the lock is held: a concurrent upload of the same bytes waits and then writes them anew.
  await blobs.delete(sha256);
  return true;
}
