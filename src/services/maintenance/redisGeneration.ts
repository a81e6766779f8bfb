import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ReconcileContext, ReconcileReport } from './reconcile.js';
import { runReconcile } from './reconcileRun.js';

/**
 * Tells a Redis that lost molvault's data (FLUSHALL, a restart without persistence, a failover to an
 * empty replica) from one that holds it, with Postgres's help. Redis holds a generation mark under
 * the queue prefix, and Postgres remembers (`queue_generations`) the mark it last saw there:
 * - the mark as Postgres remembers it: nothing lost;
 * - no memory in Postgres: a queue prefix never used before, nothing to lose (the mark is made);
 * - the mark missing, or not the one Postgres remembers: every job, flow and schedule may be gone,
 *   so no unfinished work can be assumed to have its job. Reconcile then re-adds it all at once
 *   (olderThanMs 0) instead of waiting RECONCILE_AFTER_MS for it to look abandoned. That adds only
 *   jobs Redis does not hold: reconcile looks each deterministic id up first and leaves a job that
 *   exists alone, and a job re-added while the worker that lost it still runs it is harmless, as
 *   every handler is idempotent.
 * The new mark is written before the pass and recorded in Postgres only once a pass ran whole, so
 * a process killed mid-pass, a pass that met an outage, or a second loss during the pass leaves the
 * mismatch for the next check. One pass at a time across processes (runReconcile's lock).
 */

export type GenerationCheck =
  | { state: 'same' }
  | { state: 'new' }
  | { state: 'recovered'; reports: Record<string, ReconcileReport | { error: string }> }
  /** Lost, and not recovered yet: another pass held the lock, or this one met an error. Check again soon. */
  | { state: 'pending'; reason: string };

/** How long a recovery waits for a reconcile pass that is running before it says it is pending. */
const RECOVERY_LOCK_WAIT_MS = 60_000;

/** The mark each process last saw agree with Postgres, so an unchanged Redis costs one GET. */
const agreed = new WeakMap<Redis, Map<string, string>>();

function markKey(prefix: string): string {
  return `${prefix}:molvault:generation`;
}

async function remembered(ctx: ReconcileContext, prefix: string): Promise<string | undefined> {
  const [row] = await ctx.em.execute<{ generation: string }[]>('select generation from queue_generations where queue_prefix = ?', [prefix]);
  return row?.generation;
}

export async function checkRedisGeneration(ctx: ReconcileContext, by: string): Promise<GenerationCheck> {
  const prefix = ctx.config.queuePrefix;
  const key = markKey(prefix);
  const seen = agreed.get(ctx.redis) ?? new Map<string, string>();
  agreed.set(ctx.redis, seen);
  const current = await ctx.redis.get(key);
  if (current !== null && current === seen.get(prefix)) return { state: 'same' };
  const known = await remembered(ctx, prefix);
  if (known === undefined) {
    // First use of this prefix: whichever process comes first makes the mark, and every one records the same.
    await ctx.redis.set(key, randomUUID(), 'NX');
    const mark = (await ctx.redis.get(key)) as string;
    await ctx.em.execute('insert into queue_generations (queue_prefix, generation) values (?, ?) on conflict (queue_prefix) do nothing', [prefix, mark]);
    if ((await remembered(ctx, prefix)) === mark) seen.set(prefix, mark);
    return { state: 'new' };
  }
  if (current === known) {
    seen.set(prefix, current);
    return { state: 'same' };
  }
  const mark = randomUUID();
  const run = await runReconcile(ctx, 0, `${by} (Redis had lost its data)`, {
    // A pass that is running (the schedule's, which waits for work to look abandoned) is waited for, then this one runs.
    waitMs: RECOVERY_LOCK_WAIT_MS,
    // Under the lock: another process may have recovered while this one waited.
    beforePass: async () => {
      const [now, still] = await Promise.all([ctx.redis.get(key), remembered(ctx, prefix)]);
      if (now !== null && now === still) return false;
      await ctx.redis.set(key, mark);
      return true;
    },
    // Recorded before the lock is let go: a process waiting for it then finds nothing left to recover.
    afterPass: async (reports) => {
      if (Object.values(reports).some((report) => 'error' in report)) return;
      await ctx.em.execute(
        `insert into queue_generations (queue_prefix, generation) values (?, ?)
         on conflict (queue_prefix) do update set generation = excluded.generation, recorded_at = now()`,
        [prefix, mark],
      );
      seen.set(prefix, mark);
    },
  });
  if (!run.ran) return run.reason === 'not needed any more' ? { state: 'same' } : { state: 'pending', reason: run.reason };
  const failed = Object.entries(run.reports).filter(([, report]) => 'error' in report);
  if (failed.length > 0) return { state: 'pending', reason: `reconcile failed for ${failed.map(([name]) => name).join(', ')}` };
  return { state: 'recovered', reports: run.reports };
}
