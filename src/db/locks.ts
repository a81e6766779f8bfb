import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The transaction-scoped advisory locks molvault takes, each keyed by a prefix and a subject hashed
 * with hashtextextended. Named here once, so two places that must exclude each other always agree
 * on the key.
 */
export const LOCK_KEYS = {
  /** Everything that creates or drops a reference to one blob (by content hash). */
  blob: 'blob:',
  /** One user's charged bytes and reservations (by user id). */
  quota: 'quota:',
  /** A bulk import's claim of some content in a project (by project id and content hash). */
  importClaim: 'import-claim:',
  /** One import chunk at a time refreshes the planner's statistics (no subject). */
  importAnalyze: 'import-analyze',
} as const;

/**
 * The session-level advisory locks (pg_advisory_lock on a connection of its own, held across many
 * transactions and released by hand), keyed by a number.
 */
export const SESSION_LOCK_KEYS = {
  /** A backup or its retention is running on this database (src/backup/service.ts). */
  backup: 0x6d76_6263,
  /** A reconcile pass is running (the schedule's or a watchdog's): one at a time across processes. */
  reconcile: 0x6d76_7263,
} as const;

/** Takes the lock of each subject (sorted and distinct, so two holders of several never deadlock), in one statement. */
export async function lockAll(em: EntityManager, prefix: string, subjects: readonly string[]): Promise<void> {
  const sorted = [...new Set(subjects)].sort();
  if (sorted.length === 0) return;
  if (sorted.length === 1) {
    await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [prefix + sorted[0]]);
    return;
  }
  await em.execute(
    `select pg_advisory_xact_lock(hashtextextended(? || s, 0))
       from (select value as s from jsonb_array_elements_text(?::jsonb) order by 1) ordered`,
    [prefix, JSON.stringify(sorted)],
  );
}

/** Takes one lock, or returns false at once when another transaction holds it. */
export async function tryLock(em: EntityManager, key: string): Promise<boolean> {
  const [row] = await em.execute<{ locked: boolean }[]>('select pg_try_advisory_xact_lock(hashtextextended(?, 0)) as locked', [key]);
  return row?.locked === true;
}
