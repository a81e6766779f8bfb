import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { LOCK_KEYS, lockAll } from '../../db/locks.js';
import { Refusal } from '../../lib/refusal.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { allBlobReferencesSql, BLOB_PUT_HOLD } from './blobReferences.js';

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

/**
 * A blob put before the transaction that was to record it was deleted by garbage collection in
 * between (it was an old orphan of the same content). Nothing was recorded; the work is done again.
 */
export class BlobCollectedMeanwhileError extends Refusal {
  constructor(readonly sha256: string) {
    super(
      503,
      'blob_collected_meanwhile',
      `The stored file ${sha256} was cleaned up by garbage collection while it was being recorded, so nothing was recorded; please try again.`,
      { retryAfterSeconds: 1 },
    );
  }
}

/**
 * Blobs are put into the store before the transaction that records them, never inside it: a put
 * streams the whole content (to S3, over the network), and inside a transaction it would hold a
 * pooled connection and the blob, quota and row locks for all that time. That order is safe because
 * a blob is immutable and content-addressed (putting it twice is a no-op), garbage collection spares
 * a blob without a row for its grace period (gc.ts), and deletes one only under its lock. So the
 * recording transaction, once it holds the blobs' locks (lockBlob/lockBlobs), checks here that every
 * one is still there; from then on none can be deleted before the rows referring to it commit. A blob
 * put and never recorded (a crash, a refusal after the put) is garbage collection's to remove.
 */
export async function assertBlobsStored(blobs: BlobStore, hashes: readonly string[]): Promise<void> {
  const unique = [...new Set(hashes)];
  const present = await Promise.all(unique.map((sha256) => blobs.has(sha256)));
  const gone = unique.find((_, i) => !present[i]);
  if (gone) throw new BlobCollectedMeanwhileError(gone);
}

/** Blobs announced before their put: the intents' ids, to confirm them with (confirmBlobsStored). */
export interface BlobPutAnnouncement {
  intents: { id: string; sha256: string }[];
}

/**
 * Announces that these blobs are about to be put, inside a transaction holding their locks
 * (lockBlobs). Until confirmBlobsStored consumes it, or BLOB_PUT_HOLD passes, each announcement
 * counts as a reference: no deletion (a pruned version's blob, garbage collection) removes those
 * bytes, since every deletion holds the blob's lock and re-checks the references.
 */
export async function announceBlobPuts(tx: EntityManager, hashes: readonly string[]): Promise<BlobPutAnnouncement> {
  const intents = [...new Set(hashes)].map((sha256) => ({ id: randomUUID(), sha256 }));
  if (intents.length > 0) {
    await tx.execute(`insert into blob_put_intents (id, sha256) select x.id, x.sha256 from jsonb_to_recordset(?::jsonb) as x(id uuid, sha256 text)`, [
      JSON.stringify(intents),
    ]);
  }
  return { intents };
}

/**
 * assertBlobsStored for blobs announced before their put, inside the recording transaction once it
 * holds their locks: an announcement still within its hold proves no deletion ran since, so the
 * store is asked only about the others (a hold that ran out). The announcements are consumed.
 */
export async function confirmBlobsStored(tx: EntityManager, blobs: BlobStore, announcement: BlobPutAnnouncement): Promise<void> {
  if (announcement.intents.length === 0) return;
  // clock_timestamp, not now(): the hold is judged when the lock is held, not when the transaction began.
  const held = await tx.execute<{ sha256: string; held: boolean }[]>(
    `delete from blob_put_intents where id = any(?::uuid[]) returning sha256, created_at > clock_timestamp() - interval '${BLOB_PUT_HOLD}' as held`,
    [sqlArray(announcement.intents.map((intent) => intent.id))],
  );
  const confirmed = new Set(held.filter((row) => row.held).map((row) => row.sha256));
  await assertBlobsStored(
    blobs,
    announcement.intents.filter((intent) => !confirmed.has(intent.sha256)).map((intent) => intent.sha256),
  );
}

/** Drops announcements whose work did not record them (it failed or was refused after the put). */
export async function withdrawBlobPuts(em: EntityManager, announcement: BlobPutAnnouncement): Promise<void> {
  if (announcement.intents.length === 0) return;
  await em.execute('delete from blob_put_intents where id = any(?::uuid[])', [sqlArray(announcement.intents.map((intent) => intent.id))]);
}

/** Records a committed blob (idempotent; clears an orphan mark). Call inside a transaction holding lockBlob, after assertBlobsStored. */
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
  // Deleted while the lock is held: a concurrent upload that put the same bytes waits, finds them gone (assertBlobsStored) and is done again.
  await blobs.delete(sha256);
  return true;
}
