import os from 'node:os';
import pg from 'pg';
import { SESSION_LOCK_KEYS } from '../../db/locks.js';
import type { ReconcileContext } from './reconcile.js';
import { reconcileAll } from './reconcile.js';
import type { ReconcileReport } from './reconciler.js';

const RUN_NAME = 'reconcile';

export type ReconcileRunResult =
  | { ran: true; reports: Record<string, ReconcileReport | { error: string }> }
  | { ran: false; reason: 'another reconcile is running' };

/**
 * Runs every reconciler, one pass at a time across every process (a session-level advisory lock on
 * a connection of its own), and records in Postgres when it finished: the scheduled job and each
 * worker's watchdog both come through here, so they never reconcile the same work twice at once,
 * and the watchdog can tell from Postgres alone whether reconcile has run lately.
 */
export async function runReconcile(ctx: ReconcileContext, olderThanMs: number, by: string): Promise<ReconcileRunResult> {
  const client = new pg.Client({ connectionString: ctx.config.databaseUrl });
  client.on('error', (error) => ctx.log.warn({ err: error }, 'the reconcile lock connection failed'));
  await client.connect();
  try {
    const [row] = (await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [SESSION_LOCK_KEYS.reconcile])).rows;
    if (!row?.locked) return { ran: false, reason: 'another reconcile is running' };
    try {
      const reports = await reconcileAll(ctx, olderThanMs);
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

/** How long ago a reconcile pass last finished, in ms (Infinity when none ever did). */
export async function msSinceLastReconcile(ctx: ReconcileContext): Promise<number> {
  const [row] = await ctx.em.execute<{ ms: string | null }[]>(
    `select (extract(epoch from (now() - finished_at)) * 1000)::bigint as ms from maintenance_runs where name = ?`,
    [RUN_NAME],
  );
  return row?.ms === null || row?.ms === undefined ? Number.POSITIVE_INFINITY : Number(row.ms);
}
