import type { EntityManager } from '@mikro-orm/postgresql';
import { LOCK_KEYS, lockAll } from '../../db/locks.js';
import type { Logger } from '../../lib/logger.js';
import type { Visibility } from '../auth/visibility.js';
import { allBlobReferencesSql, USAGE_CATEGORIES, type UsageCategory } from './blobReferences.js';

/**
 * A blob a user holds in several ways is charged once, to the first of these categories it is in
 * (a version that is current and also in the trash elsewhere counts as current).
 */
const CATEGORY_PRIORITY: readonly UsageCategory[] = ['current', 'drafts', 'history', 'derived', 'exports', 'trash'];

export type UsageBreakdown = Record<UsageCategory, number>;

export interface UsageFigure {
  usedBytes: number;
  breakdown: UsageBreakdown;
}

const emptyBreakdown = (): UsageBreakdown => Object.fromEntries(USAGE_CATEGORIES.map((c) => [c, 0])) as UsageBreakdown;

function priorityCase(): string {
  // Categories not in the priority list (added by someone later) sort last but still count.
  const order = [...CATEGORY_PRIORITY, ...USAGE_CATEGORIES.filter((c) => !CATEGORY_PRIORITY.includes(c))];
  return `case refs.category ${order.map((c, i) => `when '${c}' then ${i}`).join(' ')} else ${order.length} end`;
}

/**
 * Charged bytes per user, read from every source in BLOB_REFERENCE_SOURCES: distinct blobs per
 * user, each charged to its highest-priority category. One user, or every user that holds a blob.
 */
export async function computeUsage(em: EntityManager, userId?: string): Promise<Map<string, UsageFigure>> {
  const rows = await em.execute<{ owner_id: string; category: string; bytes: string }[]>(
    `select r.owner_id, r.category, sum(b.size)::bigint as bytes
       from (select distinct on (refs.owner_id, refs.blob_sha256) refs.owner_id, refs.blob_sha256, refs.category
               from (${allBlobReferencesSql()}) refs
              where refs.category is not null and refs.blob_sha256 is not null ${userId ? 'and refs.owner_id = ?' : ''}
              order by refs.owner_id, refs.blob_sha256, ${priorityCase()}) r
       join blobs b on b.sha256 = r.blob_sha256
      group by r.owner_id, r.category`,
    userId ? [userId] : [],
  );
  const result = new Map<string, UsageFigure>();
  for (const row of rows) {
    let figure = result.get(row.owner_id);
    if (!figure) {
      figure = { usedBytes: 0, breakdown: emptyBreakdown() };
      result.set(row.owner_id, figure);
    }
    const bytes = Number(row.bytes);
    figure.usedBytes += bytes;
    figure.breakdown[row.category as UsageCategory] = (figure.breakdown[row.category as UsageCategory] ?? 0) + bytes;
  }
  return result;
}

/**
 * Serialises everything that reads or changes one user's charged bytes and reservations (a
 * transaction-scoped advisory lock). Always taken last, after any blob or row lock, so lock
 * order is the same everywhere.
 */
export async function lockQuota(em: EntityManager, userId: string): Promise<void> {
  await lockAll(em, LOCK_KEYS.quota, [userId]);
}

async function storeUsage(em: EntityManager, userId: string, figure: UsageFigure): Promise<void> {
  await em.execute(
    `insert into user_usage (user_id, used_bytes, breakdown, computed_at) values (?, ?, ?::jsonb, now())
     on conflict (user_id) do update set used_bytes = excluded.used_bytes, breakdown = excluded.breakdown, computed_at = excluded.computed_at`,
    [userId, figure.usedBytes, JSON.stringify(figure.breakdown)],
  );
}

/**
 * Recomputes one user's usage from Postgres and stores it. Runs in the caller's transaction
 * (or its own) under the user's quota lock; whatever adds, moves or drops a reference calls it
 * after the change (flushed) and before commit, so the quota check always reads a true figure.
 */
export async function refreshUsage(em: EntityManager, userId: string): Promise<UsageFigure & { previous?: UsageFigure }> {
  return em.transactional(async (tx) => {
    await lockQuota(tx, userId);
    const previous = await storedUsage(tx, userId);
    const figure = (await computeUsage(tx, userId)).get(userId) ?? { usedBytes: 0, breakdown: emptyBreakdown() };
    await storeUsage(tx, userId, figure);
    return { ...figure, previous };
  });
}

export async function storedUsage(em: EntityManager, userId: string): Promise<UsageFigure | undefined> {
  const [row] = await em.execute<{ used_bytes: string; breakdown: Partial<UsageBreakdown> }[]>(
    'select used_bytes, breakdown from user_usage where user_id = ?',
    [userId],
  );
  if (!row) return undefined;
  return { usedBytes: Number(row.used_bytes), breakdown: { ...emptyBreakdown(), ...row.breakdown } };
}

export interface UsageDrift {
  userId: string;
  storedBytes: number | null;
  actualBytes: number;
  breakdown: UsageBreakdown;
}

/**
 * The usage job: every user's figure recomputed from Postgres, one user at a time under that
 * user's lock (so a concurrent upload's charge is never overwritten by an older reading).
 * Returns (and logs) every figure that had drifted.
 */
export async function recomputeAllUsage(em: EntityManager, log: Logger): Promise<{ users: number; drifted: UsageDrift[] }> {
  const users = await em.execute<{ id: string }[]>('select id from users order by id');
  const drifted: UsageDrift[] = [];
  for (const { id } of users) {
    const { previous, usedBytes, breakdown } = await refreshUsage(em.fork(), id);
    // The total is what the quota check reads: a difference there is drift. (The breakdown is only
    // refreshed on read, so it may lag without anything being wrong.) No row and nothing stored is no drift.
    const changed = previous ? previous.usedBytes !== usedBytes : usedBytes > 0;
    if (changed) drifted.push({ userId: id, storedBytes: previous?.usedBytes ?? null, actualBytes: usedBytes, breakdown });
  }
  if (drifted.length) log.warn({ drifted }, `usage: corrected the figures of ${drifted.length} user(s)`);
  else log.info({ users: users.length }, 'usage: every figure was right');
  return { users: users.length, drifted };
}

/** Bytes per project: distinct blobs of the versions of its structures (trashed ones included). */
export async function projectUsage(em: EntityManager, visible: Visibility): Promise<{ id: string; name: string; usedBytes: number }[]> {
  // The projects charged to the caller (owned of record) that they may see through this token.
  const limit = visible.allOwn ? '' : ' and p.id = any(?::uuid[])';
  const rows = await em.execute<{ id: string; name: string; bytes: string | null }[]>(
    `select p.id, p.name,
            (select sum(b.size) from blobs b where b.sha256 in (
               select v.blob_sha256 from structure_versions v join structures s on s.id = v.structure_id where s.project_id = p.id)) as bytes
       from projects p where p.owner_id = ?${limit} order by p.name`,
    visible.allOwn ? [visible.userId] : [visible.userId, `{${visible.projectIds.join(',')}}`],
  );
  return rows.map((r) => ({ id: r.id, name: r.name, usedBytes: Number(r.bytes ?? 0) }));
}
