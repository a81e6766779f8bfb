import type { Config } from '../config/index.js';

/** What `molvault blobs migrate` records once every blob is verified in the store it moved them to. */
export interface BlobStoreRecord {
  kind: 'local' | 's3';
  /** s3://bucket/prefix or the local directory, as the migrating process saw it. */
  location: string;
  blobs: number;
  switchedAt: string;
}

type Execute = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

export const BLOB_STORE_SETTING = 'blob_store';

export async function recordedBlobStore(execute: Execute): Promise<BlobStoreRecord | undefined> {
  const [row] = await execute('select value from storage_settings where key = ?', [BLOB_STORE_SETTING]);
  return row?.value as BlobStoreRecord | undefined;
}

export async function recordBlobStore(execute: Execute, record: BlobStoreRecord): Promise<void> {
  await execute(
    `insert into storage_settings (key, value, updated_at) values (?, ?::jsonb, now())
     on conflict (key) do update set value = excluded.value, updated_at = now()`,
    [BLOB_STORE_SETTING, JSON.stringify(record)],
  );
}

/**
 * Refuses to run a process whose BLOB_STORE is not the store the blobs were moved to: it would
 * look for blobs where they no longer are, and write new ones where nobody reads them.
 */
export async function assertBlobStoreAgrees(execute: Execute, config: Pick<Config, 'blobStore'>): Promise<void> {
  const recorded = await recordedBlobStore(execute);
  if (recorded && recorded.kind !== config.blobStore) {
    throw new Error(
      `The blobs were moved to the ${recorded.kind} store (${recorded.location}) by "molvault blobs migrate" on ${recorded.switchedAt}, ` +
        `but this process has BLOB_STORE=${config.blobStore}. Set BLOB_STORE=${recorded.kind} (and its settings) on every host.`,
    );
  }
}
