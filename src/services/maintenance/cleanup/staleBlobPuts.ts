import { BLOB_PUT_HOLD } from '../../quota/blobReferences.js';
import type { CleanupStep } from './types.js';

/**
 * Announcements of blob puts whose work never recorded them (a worker died in between) and whose
 * hold ran out: they no longer hold anything, so the rows go; the blobs are garbage collection's.
 */
export const staleBlobPuts: CleanupStep = {
  name: 'stale blob put announcements',
  async run(ctx) {
    const stale = `created_at < ?::timestamptz - interval '${BLOB_PUT_HOLD}'`;
    if (ctx.dryRun) {
      const [row] = await ctx.em.execute<{ n: string }[]>(`select count(*) as n from blob_put_intents where ${stale}`, [ctx.now]);
      const n = Number(row?.n ?? 0);
      return { removed: n, bytesFreed: 0, items: n ? [{ what: `${n} blob put announcements`, bytes: 0 }] : [] };
    }
    const removed = await ctx.em.execute<{ sha256: string }[]>(`delete from blob_put_intents where ${stale} returning sha256`, [ctx.now]);
    return {
      removed: removed.length,
      bytesFreed: 0,
      items: removed.length ? [{ what: `${removed.length} blob put announcements`, bytes: 0, reason: 'their work never recorded them' }] : [],
    };
  },
};
