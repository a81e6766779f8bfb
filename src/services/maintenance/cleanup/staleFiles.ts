import fs from 'node:fs/promises';
import path from 'node:path';
import { type CleanupContext, type CleanupStep, measure, StepTally } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Entries of `root` untouched for STAGING_MAX_AGE_MS and not `live` are removed. */
async function sweep(ctx: CleanupContext, root: string, label: string, live: (name: string) => Promise<boolean>, tally: StepTally) {
  const cutoff = ctx.now.getTime() - ctx.config.stagingMaxAgeMs;
  const names = await fs.readdir(root).catch(() => [] as string[]);
  for (const name of names) {
    const target = path.join(root, name);
    const { bytes, newestMs } = await measure(target);
    if (newestMs === undefined || newestMs >= cutoff) continue;
    if (await live(name)) continue;
    tally.add({ what: `${label} ${target}`, bytes, reason: `untouched since ${new Date(newestMs).toISOString()}` });
    if (!ctx.dryRun) await fs.rm(target, { recursive: true, force: true });
  }
}

/**
 * Staging entries a crash left behind. An entry is live while its upload is `received` (ingest
 * still needs the file), while its import item (or, for a bundle, any of its items) is not yet ended, or (an archive) while its import
 * is being received or unpacked; entries with no row are uploads that never finished streaming.
 */
export const staleStaging: CleanupStep = {
  name: 'stale staging',
  async run(ctx) {
    const tally = new StepTally();
    const cutoff = ctx.now.getTime() - ctx.config.stagingMaxAgeMs;
    const live = async (name: string) => {
      if (!UUID.test(name)) return false;
      const [row] = await ctx.em.execute<{ live: boolean }[]>(
        `select exists (select 1 from uploads where id = ? and state = 'received')
               or exists (select 1 from import_items where id = ? and state in ('pending', 'processing'))
               or exists (select 1 from import_items where staged_bundle = ? and state in ('pending', 'processing'))
               or exists (select 1 from import_batches where id = ? and state in ('receiving', 'expanding')) as live`,
        [name, name, name, name],
      );
      return row?.live === true;
    };
    // Through the staging interface, so entries in the object store's staging area are swept like files.
    for (const entry of await ctx.staging.entries()) {
      if (entry.modifiedAt.getTime() >= cutoff || (await live(entry.id))) continue;
      tally.add({ what: `staging ${entry.id}`, bytes: entry.bytes, reason: `untouched since ${entry.modifiedAt.toISOString()}` });
      if (!ctx.dryRun) await ctx.staging.remove(entry.id);
    }
    return tally.result();
  },
};

/** Blob-store temp files (`blobs/tmp/*.part`) of ingests that died before committing. */
export const blobTempFiles: CleanupStep = {
  name: 'blob store temp files',
  async run(ctx) {
    const tally = new StepTally();
    await sweep(ctx, path.join(ctx.config.blobDir, 'tmp'), 'temp file', async () => false, tally);
    return tally.result();
  },
};

/** Per-job scratch directories of the engines (DATA_DIR/scratch/<job>) left by killed jobs. */
export const scratchDirs: CleanupStep = {
  name: 'engine scratch directories',
  async run(ctx) {
    const tally = new StepTally();
    await sweep(ctx, ctx.config.scratchDir, 'scratch', async () => false, tally);
    return tally.result();
  },
};
