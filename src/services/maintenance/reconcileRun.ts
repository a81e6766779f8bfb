import os from 'node:os';
import pg from 'pg';
import { SESSION_LOCK_KEYS } from '../../db/locks.js';
import type { ReconcileContext } from './reconcile.js';
import { reconcileAll } from './reconcile.js';
import type { ReconcileReport } from './reconciler.js';

const RUN_NAME = 'reconcile';

export type ReconcileRunResult =
  | { ran: true; reports: Record<string, ReconcileReport | { error: string }> }
  | { ran: false; reason: 'another reconcile is running' | 'not needed any more' };

export interface ReconcileRunOptions {
  /** Waits this long for a pass that is running to end, instead of giving up at once. */
  waitMs?: number;
  /**
   * Called once the lock is held, before the pass: false skips the pass (what called for it was
   * seen to, by another process, while this one waited for the lock).
   */
  beforePass?(): Promise<boolean>;
  /** Called with the pass's reports while the lock is still held, so the next holder sees what it recorded. */
  afterPass?(reports: Record<string, ReconcileReport | { error: string }>): Promise<void>;
}

/**
 * Runs every reconciler, one pass at a time across every process (a session-level advisory lock on
 * a connection of its own), and records in Postgres when it finished: the scheduled job and each
 * worker's watchdog both come through here, so they never reconcile the same work twice at once,
 * and the watchdog can tell from Postgres alone whether reconcile has run lately.
 */
export async function runReconcile(ctx: ReconcileContext, olderThanMs: number, by: string, options: ReconcileRunOptions = {}): Promise<ReconcileRunResult> {
  const client = new pg.Client({ connectionString: ctx.config.databaseUrl });
  client.on('error', (error) => ctx.log.warn({ err: error }, 'the reconcile lock connection failed'));
  await client.connect();
  try {
    if (!(await takeLock(client, options.waitMs ?? 0))) return { ran: false, reason: 'another reconcile is running' };
    try {
      if (options.beforePass && !(await options.beforePass())) return { ran: false, reason: 'not needed any more' };
      const reports = await reconcileAll(ctx, olderThanMs);
      await options.afterPass?.(reports);
      await client.query(
        `insert into maintenance_runs (name, finished_at, finished_by) values ($1, now(), $2)
         on conflict (name) do update set finished_at = excluded.finished_at, finished_by = excluded.finished_by`,
        [RUN_NAME, `${by} on ${os.hostname()} pid ${process.pid}`],
      );
      return { ran: true, reports };
    } finally {
      await client.query('select pg_advisory_unlock($1)', [SESSION_LOCK_KEYS.reconcile]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** The reconcile lock, at once or within waitMs (lock_timeout bounds the wait). */
async function takeLock(client: pg.Client, waitMs: number): Promise<boolean> {
  if (waitMs <= 0) {
    const [row] = (await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [SESSION_LOCK_KEYS.reconcile])).rows;
    return row?.locked === true;
  }
  await client.query(`set lock_timeout = ${Math.ceil(waitMs)}`);
  try {
    await client.query('select pg_advisory_lock($1)', [SESSION_LOCK_KEYS.reconcile]);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') return false; // lock_not_available: the wait ran out
    throw error;
  }
}

/** How long ago a reconcile pass last finished, in ms (Infinity when none ever did). */
export async function msSinceLastReconcile(ctx: ReconcileContext): Promise<number> {
  const [row] = await ctx.em.execute<{ ms: string | null }[]>(
    `select (extract(epoch from (now() - finished_at)) * 1000)::bigint as ms from maintenance_runs where name = ?`,
    [RUN_NAME],
  );
  return row?.ms === null || row?.ms === undefined ? Number.POSITIVE_INFINITY : Number(row.ms);
}
