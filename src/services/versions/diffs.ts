import type { EntityManager } from '@mikro-orm/postgresql';
import { VersionDiff } from '../../entities/VersionDiff.js';
import type { DiffOptions, StructuralDiff } from '../../formats/diff.js';

/** The cache key of a diff (also in its job's id, so it lives with the job contracts). */
export { diffKey } from '../../queue/keys.js';

export async function findCachedDiff(em: EntityManager, key: string): Promise<VersionDiff | null> {
  return em.findOne(VersionDiff, { key }, { refresh: true });
}

/** Stores a computed diff (idempotent: a second delivery of the same job changes nothing). */
export async function storeDiff(
  em: EntityManager,
  entry: { key: string; fromSha: string; toSha: string; options: DiffOptions; result: StructuralDiff; computeMs: number },
): Promise<void> {
  await em.execute(
    `insert into version_diffs (key, from_blob_sha256, to_blob_sha256, options, result, compute_ms, created_at)
     values (?, ?, ?, ?::jsonb, ?::jsonb, ?, now()) on conflict (key) do nothing`,
    [entry.key, entry.fromSha, entry.toSha, JSON.stringify(entry.options), JSON.stringify(entry.result), entry.computeMs],
  );
}

/**
 * For the cleanup schedule: forgets diffs computed more than `maxAgeDays` ago (a later request
 * computes them again). Rows also go with either blob (foreign key cascade), so this only bounds
 * the cache of long-lived versions.
 */
export async function expireDiffCache(em: EntityManager, maxAgeDays: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - maxAgeDays * 24 * 3600 * 1000);
  const rows = await em.execute<{ key: string }[]>('delete from version_diffs where created_at < ? returning key', [cutoff]);
  return rows.length;
}
