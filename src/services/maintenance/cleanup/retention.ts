import { expireDiffCache } from '../../versions/diffs.js';
import { deleteExpiredDrafts } from '../../versions/drafts.js';
import { pruneAll } from '../../versions/pruning.js';
import { purgeExpiredTrash } from '../../versions/trash.js';
import type { CleanupContext, CleanupStep } from './types.js';

const DAY_MS = 24 * 3600_000;
/** Cached diffs are cheap to recompute and their blobs may be long gone; a month is plenty. */
const DIFF_CACHE_DAYS = 30;

async function count(ctx: CleanupContext, sql: string, params: unknown[]): Promise<number> {
  const [row] = await ctx.em.execute<{ n: string }[]>(sql, params);
  return Number(row?.n ?? 0);
}

/** Structures in the trash longer than TRASH_RETENTION_DAYS are purged (rows, and blobs nothing else holds). */
export const expiredTrash: CleanupStep = {
  name: 'expired trash',
  async run(ctx) {
    const cutoff = new Date(ctx.now.getTime() - ctx.config.trashRetentionDays * DAY_MS);
    if (ctx.dryRun) {
      const n = await count(ctx, 'select count(*) as n from structures where deleted_at is not null and deleted_at <= ?', [cutoff]);
      return { removed: n, bytesFreed: 0, items: n ? [{ what: `${n} structures trashed before ${cutoff.toISOString()}`, bytes: 0 }] : [] };
    }
    const result = await purgeExpiredTrash(ctx.em, ctx.blobs, ctx.config.trashRetentionDays, ctx.queues, ctx.now);
    return {
      removed: result.purged.length,
      bytesFreed: 0,
      items: result.purged.map((id) => ({ what: `structure ${id}`, bytes: 0, reason: 'trash retention passed' })),
    };
  },
};

/** Drafts not saved for DRAFT_RETENTION_DAYS are deleted. */
export const expiredDrafts: CleanupStep = {
  name: 'expired drafts',
  async run(ctx) {
    if (ctx.dryRun) {
      const cutoff = new Date(ctx.now.getTime() - ctx.config.draftRetentionDays * DAY_MS);
      const n = await count(ctx, 'select count(*) as n from drafts where updated_at < ?', [cutoff]);
      return { removed: n, bytesFreed: 0, items: n ? [{ what: `${n} drafts last saved before ${cutoff.toISOString()}`, bytes: 0 }] : [] };
    }
    const removed = await deleteExpiredDrafts(ctx.em, ctx.blobs, ctx.config.draftRetentionDays);
    return { removed, bytesFreed: 0, items: [] };
  },
};

/** Every project's version-pruning policy, applied again (versions also age out between uploads). */
export const versionPruning: CleanupStep = {
  name: 'version pruning',
  async run(ctx) {
    if (ctx.dryRun) return { removed: 0, bytesFreed: 0, items: [{ what: 'version pruning: not run in a dry run', bytes: 0 }] };
    const result = await pruneAll(ctx.em, ctx.blobs, ctx.now);
    return { removed: result.versions, bytesFreed: result.bytesFreed, items: [] };
  },
};

/** Cached structure diffs older than a month (recomputed on demand). */
export const staleDiffCache: CleanupStep = {
  name: 'stale diff cache',
  async run(ctx) {
    const cutoff = new Date(ctx.now.getTime() - DIFF_CACHE_DAYS * DAY_MS);
    if (ctx.dryRun) {
      const n = await count(ctx, 'select count(*) as n from version_diffs where created_at < ?', [cutoff]);
      return { removed: n, bytesFreed: 0, items: [] };
    }
    return { removed: await expireDiffCache(ctx.em, DIFF_CACHE_DAYS, ctx.now), bytesFreed: 0, items: [] };
  },
};
