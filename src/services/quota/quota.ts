import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { formatBytes } from '../../lib/bytes.js';
import { allBlobReferencesSql } from './blobReferences.js';
import { lockQuota, refreshUsage, storedUsage } from './usage.js';

/** Refused because the bytes would pass the owner's quota; the API answers 507 with these numbers. */
export class QuotaExceededError extends Error {
  readonly code = 'quota_exceeded';
  constructor(
    readonly quotaBytes: number,
    readonly usedBytes: number,
    readonly reservedBytes: number,
    readonly requestedBytes: number,
  ) {
    const left = Math.max(0, quotaBytes - usedBytes - reservedBytes);
    super(
      `This upload needs ${formatBytes(requestedBytes)}, but only ${formatBytes(left)} of your ${formatBytes(quotaBytes)} quota is left ` +
        `(${formatBytes(usedBytes)} stored${reservedBytes > 0 ? `, ${formatBytes(reservedBytes)} held by uploads in progress` : ''}). ` +
        'Delete and purge what you no longer need, or ask an administrator for more space.',
    );
    this.name = 'QuotaExceededError';
  }

  get details() {
    return { quotaBytes: this.quotaBytes, usedBytes: this.usedBytes, reservedBytes: this.reservedBytes, requestedBytes: this.requestedBytes };
  }
}

interface QuotaState {
  quotaBytes: number;
  usedBytes: number;
  /** Held by the owner's other uploads in flight. */
  reservedBytes: number;
  /** Held by this upload already. */
  heldBytes: number;
}

async function readState(tx: EntityManager, userId: string, uploadId: string, fresh: boolean): Promise<QuotaState> {
  const [row] = await tx.execute<{ quota_bytes: string; others: string | null; held: string | null }[]>(
    `select u.quota_bytes,
            (select sum(bytes) from quota_reservations r where r.owner_id = u.id and r.upload_id <> ?) as others,
            (select bytes from quota_reservations r where r.upload_id = ?) as held
       from users u where u.id = ?`,
    [uploadId, uploadId, userId],
  );
  if (!row) throw new Error(`no user ${userId}`);
  const stored = fresh ? undefined : await storedUsage(tx, userId);
  const usedBytes = stored ? stored.usedBytes : (await refreshUsage(tx, userId)).usedBytes;
  return { quotaBytes: Number(row.quota_bytes), usedBytes, reservedBytes: Number(row.others ?? 0), heldBytes: Number(row.held ?? 0) };
}

/**
 * Holds bytes of an upload against its owner's quota: at least `needed` (else QuotaExceededError),
 * up to `wanted` as far as the quota allows. Sets the reservation to that amount and returns it.
 * Race-free: every reader and writer of a user's reservations and usage holds that user's quota
 * lock, so two uploads can never both take the last bytes.
 */
export async function reserve(em: EntityManager, input: { userId: string; uploadId: string; needed: number; wanted?: number }): Promise<number> {
  const wanted = Math.max(input.needed, input.wanted ?? input.needed);
  // Already held (an ingest whose content is no bigger than what arrived): lowering one's own
  // reservation cannot pass anyone's quota, so it needs no lock — the common case stays off the
  // per-user lock that every upload of a bulk import would otherwise queue on.
  const [own] = await em.execute<{ bytes: string }[]>('select bytes from quota_reservations where upload_id = ?', [input.uploadId]);
  const held = Number(own?.bytes ?? 0);
  if (own && held >= wanted) {
    if (held > wanted) await shrinkReservation(em, input.uploadId, wanted);
    return wanted;
  }
  return em.transactional(async (tx) => {
    await lockQuota(tx, input.userId);
    let state = await readState(tx, input.userId, input.uploadId, false);
    let available = state.quotaBytes - state.usedBytes - state.reservedBytes;
    if (input.needed > available) {
      // The stored figure may be high after a purge nobody refreshed: refuse only on a fresh one.
      state = await readState(tx, input.userId, input.uploadId, true);
      available = state.quotaBytes - state.usedBytes - state.reservedBytes;
      if (input.needed > available) throw new QuotaExceededError(state.quotaBytes, state.usedBytes, state.reservedBytes, input.needed);
    }
    const granted = Math.max(input.needed, Math.min(wanted, available));
    if (granted !== state.heldBytes || state.heldBytes === 0) await setReservations(tx, input.userId, [{ uploadId: input.uploadId, bytes: granted }]);
    return granted;
  });
}

/**
 * Holds bytes for several new uploads of one owner at once, all or none, in a transaction of the
 * caller's (a bulk import's chunk). Returns false, holding nothing, when the quota has no room for
 * all of them: the caller then takes them one by one through `reserve`, which also refreshes a
 * stale usage figure before it refuses.
 */
export async function reserveAll(tx: EntityManager, ownerId: string, holds: readonly { uploadId: string; bytes: number }[]): Promise<boolean> {
  if (holds.length === 0) return true;
  await lockQuota(tx, ownerId);
  const needed = holds.reduce((sum, hold) => sum + hold.bytes, 0);
  const [quota] = await tx.execute<{ quota_bytes: string; reserved: string }[]>(
    'select u.quota_bytes, coalesce((select sum(bytes) from quota_reservations r where r.owner_id = u.id), 0) as reserved from users u where u.id = ?',
    [ownerId],
  );
  const used = (await storedUsage(tx, ownerId)) ?? (await refreshUsage(tx, ownerId));
  if (Number(quota?.quota_bytes ?? 0) - used.usedBytes - Number(quota?.reserved ?? 0) < needed) return false;
  await setReservations(tx, ownerId, holds);
  return true;
}

/** Sets uploads' reservations (made or replaced) in one statement. A hold that grows needs the owner's quota lock. */
async function setReservations(tx: EntityManager, ownerId: string, holds: readonly { uploadId: string; bytes: number }[]): Promise<void> {
  await tx.execute(
    `insert into quota_reservations (upload_id, owner_id, bytes, created_at, updated_at)
     select x."uploadId", ?, x.bytes, now(), now() from jsonb_to_recordset(?::jsonb) as x("uploadId" uuid, bytes bigint)
     on conflict (upload_id) do update set bytes = excluded.bytes, updated_at = now()`,
    [ownerId, JSON.stringify(holds)],
  );
}

/** Lowers a reservation to `bytes` (never raises it; that needs `reserve`). */
export async function shrinkReservation(em: EntityManager, uploadId: string, bytes: number): Promise<void> {
  await em.execute('update quota_reservations set bytes = ?, updated_at = now() where upload_id = ? and bytes > ?', [bytes, uploadId, bytes]);
}

/** Drops an upload's reservation. Inside a transaction that also changes usage, call after lockQuota. */
export async function releaseReservation(em: EntityManager, uploadId: string): Promise<void> {
  await em.execute('delete from quota_reservations where upload_id = ?', [uploadId]);
}

/**
 * The end of uploads that did not become versions: their reservations go. Their blobs were never
 * charged (an upload in flight is charged to nobody), so usage does not change. Freeing bytes can
 * never let anyone pass their quota, so this takes no quota lock: a bulk import's refused files
 * would otherwise queue on it one commit at a time. (`reserve` reads the reservations before the
 * usage, so a release racing it can only make it count too much, never too little.)
 */
export async function releaseUploads(tx: EntityManager, uploadIds: readonly string[]): Promise<void> {
  if (uploadIds.length === 0) return;
  await tx.execute('delete from quota_reservations where upload_id = any(?::uuid[])', [sqlArray(uploadIds)]);
}

/**
 * The hand-over when uploads of one owner become versions, in the snapshot's transaction: their
 * reservations go and the bytes new to the owner are charged (`addedBytes`: the sizes of the blobs
 * the owner was not charged for before, decided under the blobs' locks before the versions were
 * written). An incremental update, not a recomputation, so storing a version costs the same for a
 * user with a hundred versions as for one with a million; the breakdown by category is refreshed
 * when read (GET /v1/usage) and nightly, and the nightly job corrects any drift of the total.
 * `recompute` (bytes that bring derivatives along) computes the figure whole instead.
 */
export async function chargeUploads(
  tx: EntityManager,
  ownerId: string,
  uploadIds: readonly string[],
  addedBytes: number,
  options: { recompute?: boolean } = {},
): Promise<void> {
  await lockQuota(tx, ownerId);
  await releaseUploads(tx, uploadIds);
  if (options.recompute) {
    await refreshUsage(tx, ownerId);
    return;
  }
  const [row] = await tx.execute<{ n: string }[]>(
    'with changed as (update user_usage set used_bytes = used_bytes + ? where user_id = ? returning 1) select count(*) as n from changed',
    [addedBytes, ownerId],
  );
  if (Number(row?.n ?? 0) === 0) await refreshUsage(tx, ownerId); // first figure for this user: compute it whole
}

/** chargeUploads for one upload. */
export async function chargeUpload(tx: EntityManager, ownerId: string, uploadId: string, addedBytes: number, options: { recompute?: boolean } = {}) {
  await chargeUploads(tx, ownerId, [uploadId], addedBytes, options);
}

/**
 * Holds, for uploads of one owner whose content is now known, what that content costs (`bytes`:
 * its unpacked size, or 0 when the owner is charged for those bytes already). Most holds only
 * shrink (the bytes received usually cover the content), which one statement does without the
 * quota lock; the rest go through `reserve`. Returns the uploads the quota refused, with why.
 */
export async function reserveContent(
  tx: EntityManager,
  ownerId: string,
  needs: readonly { uploadId: string; bytes: number }[],
): Promise<Map<string, QuotaExceededError>> {
  const refused = new Map<string, QuotaExceededError>();
  if (needs.length === 0) return refused;
  const short = await tx.execute<{ upload_id: string; bytes: string }[]>(
    `with wanted as (select * from jsonb_to_recordset(?::jsonb) as x("uploadId" uuid, bytes bigint)),
          shrunk as (update quota_reservations q set bytes = w.bytes, updated_at = now()
                       from wanted w where q.upload_id = w."uploadId" and q.bytes >= w.bytes returning q.upload_id)
     select w."uploadId" as upload_id, w.bytes from wanted w
      where w."uploadId" not in (select upload_id from shrunk)`,
    [JSON.stringify(needs)],
  );
  for (const row of short) {
    try {
      await reserve(tx, { userId: ownerId, uploadId: row.upload_id, needed: Number(row.bytes) });
    } catch (error) {
      if (!(error instanceof QuotaExceededError)) throw error;
      refused.set(row.upload_id, error);
    }
  }
  return refused;
}

/** Whether the user is charged for this blob already, through any reference (then it costs nothing more). */
export async function isChargedForBlob(em: EntityManager, userId: string, sha256: string): Promise<boolean> {
  return (await blobsChargedTo(em, userId, [sha256])).has(sha256);
}

/**
 * Which of these blobs the user is charged for already, through any reference, in one query. Each
 * hash is looked up on its own (lateral, stopping at the first reference), so every source is
 * reached through its blob index: as one filter over the union, the planner gathered all of the
 * user's references first.
 */
export async function blobsChargedTo(em: EntityManager, userId: string, hashes: readonly string[]): Promise<Set<string>> {
  if (hashes.length === 0) return new Set();
  const rows = await em.execute<{ blob_sha256: string }[]>(
    `select h.sha256 as blob_sha256 from (select distinct unnest(?::text[]) as sha256) h
       cross join lateral (
         select 1 from (${allBlobReferencesSql()}) refs
          where refs.blob_sha256 = h.sha256 and refs.owner_id = ? and refs.category is not null limit 1) held`,
    [sqlArray(hashes), userId],
  );
  return new Set(rows.map((r) => r.blob_sha256));
}
