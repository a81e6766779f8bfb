import { forEachLimited } from '../../lib/concurrency.js';
import type { Logger } from '../../lib/logger.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { openBlobStore, type StorageConfig } from '../../storage/create.js';
import { recordBlobStore } from '../../storage/switch.js';

type Execute = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

export interface BlobMigrationReport {
  from: 'local' | 's3';
  to: 'local' | 's3';
  /** Blob rows considered (every blob Postgres knows). */
  blobs: number;
  copied: number;
  /** In the target already (an earlier, interrupted run): verified again, not copied. */
  alreadyThere: number;
  verified: number;
  /** Rows whose blob is in neither store: nothing to copy. */
  missing: string[];
  failed: { sha256: string; reason: string }[];
  /** Whether the switch was recorded: only when every blob is verified in the target. */
  switched: boolean;
}

const COPY_CONCURRENCY = 8;

/**
 * Copies every blob Postgres knows from the other store into `to`, verifies each by reading it back
 * and hashing it, and only then records the switch (storage_settings `blob_store`), after which a
 * process with the old BLOB_STORE refuses to start. Resumable: a blob already in the target is
 * verified, not copied again; a run that failed or found blobs missing records nothing, and can be
 * run again. Passes repeat until no new blob rows appeared during the last one. The source store
 * is left as it was (remove it once satisfied).
 */
export async function migrateBlobs(
  env: { execute: Execute; config: StorageConfig; log: Logger },
  to: 'local' | 's3',
  options: { concurrency?: number; source?: BlobStore; target?: BlobStore } = {},
): Promise<BlobMigrationReport> {
  const from = to === 's3' ? 'local' : 's3';
  const source = options.source ?? (await openBlobStore(env.config, from));
  const target = options.target ?? (await openBlobStore(env.config, to));
  const report: BlobMigrationReport = { from, to, blobs: 0, copied: 0, alreadyThere: 0, verified: 0, missing: [], failed: [], switched: false };
  const done = new Set<string>();
  try {
    for (;;) {
      const rows = (await env.execute('select sha256, size from blobs order by sha256')) as { sha256: string; size: string | number }[];
      const todo = rows.filter((row) => !done.has(row.sha256));
      if (todo.length === 0) break;
      await forEachLimited(todo, options.concurrency ?? COPY_CONCURRENCY, async ({ sha256, size }) => {
        done.add(sha256);
        report.blobs++;
        const bytes = Number(size);
        try {
          if ((await target.size(sha256)) === bytes) report.alreadyThere++;
          else if (!(await source.has(sha256))) {
            report.missing.push(sha256);
            return;
          } else {
            await target.put(source.read(sha256), { sha256, size: bytes });
            report.copied++;
          }
          if (await target.verify(sha256)) report.verified++;
          else report.failed.push({ sha256, reason: 'its bytes in the target do not hash to its name' });
        } catch (error) {
          report.failed.push({ sha256, reason: (error as Error).message });
        }
      });
      env.log.info({ ...report, missing: report.missing.length, failed: report.failed.length }, 'blobs migrate: pass done');
    }
    if (report.missing.length === 0 && report.failed.length === 0 && report.verified === report.blobs) {
      await recordBlobStore(env.execute, {
        kind: to,
        location: to === 's3' ? `s3://${env.config.s3.bucket}/${env.config.s3.prefix}` : env.config.blobDir,
        blobs: report.blobs,
        switchedAt: new Date().toISOString(),
      });
      report.switched = true;
    }
    report.missing.sort();
    return report;
  } finally {
    if (!options.source) await source.close();
    if (!options.target) await target.close();
  }
}
