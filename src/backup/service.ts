import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config/index.js';
import { SESSION_LOCK_KEYS } from '../db/locks.js';
import type { BackupKind } from '../entities/Backup.js';
import { forEachLimited } from '../lib/concurrency.js';
import type { Logger } from '../lib/logger.js';
import { dropDatabase, ensureDatabase, withDatabase } from '../runtime/postgres.js';
import type { BlobStore } from '../storage/blobStore.js';
import { openBlobStore } from '../storage/create.js';
import { BLOB_COPY_CONCURRENCY, checkBackedUpBlob, copyBlobIntoBackup, fileSize, hashFile, restoreBlob, walkFiles } from './blobs.js';
import { databaseRowCount, dumpDatabase, restoreDatabase } from './dump.js';
import { BACKUP_ID, BackupLayout, type BackupManifest, MANIFEST_FORMAT, MANIFEST_VERSION, newBackupId } from './layout.js';

/** What backups need: where the data is (DATABASE_URL, DATA_DIR) and where backups go. No Redis. */
export interface BackupEnv {
  config: Pick<Config, 'backupDir' | 'blobDir' | 'backupKeepLast' | 'backupKeepDays'> & Partial<Pick<Config, 'blobStore' | 's3' | 'scratchDir'>>;
  databaseUrl: string;
  log: Logger;
  /** The blob store backed up and restored into; the one the config names when absent. */
  blobs?: BlobStore;
}

/** The env's blob store, or the one its config names (closed by `done`). */
async function blobStoreOf(env: BackupEnv): Promise<{ blobs: BlobStore; done: () => Promise<void> }> {
  if (env.blobs) return { blobs: env.blobs, done: async () => {} };
  const { config } = env;
  const blobs = await openBlobStore(
    {
      blobStore: config.blobStore ?? 'local',
      blobDir: config.blobDir,
      scratchDir: config.scratchDir ?? config.blobDir,
      s3: config.s3 as Config['s3'],
      stagingDir: '',
    },
    config.blobStore ?? 'local',
  );
  return { blobs, done: () => blobs.close() };
}

/** A refusal the caller should show as is (exit code 2 from the CLI, 409 from the API). */
export class BackupRefused extends Error {
  override name = 'BackupRefused';
}

export interface BackupSummary {
  id: string;
  kind: BackupKind;
  state: BackupManifest['state'];
  createdAt: string;
  finishedAt: string | null;
  sizeBytes: number;
  totalBytes: number;
  blobCount: number;
  newBlobCount: number;
  tables: number;
  rows: number;
  path: string;
  error: string | null;
}

/** "A backup or its retention is running on this database". */
const BACKUP_LOCK = SESSION_LOCK_KEYS.backup;

export function summarize(layout: BackupLayout, manifest: BackupManifest): BackupSummary {
  return {
    id: manifest.id,
    kind: manifest.kind,
    state: manifest.state,
    createdAt: manifest.createdAt,
    finishedAt: manifest.finishedAt,
    sizeBytes: manifest.totals.sizeBytes,
    totalBytes: manifest.totals.totalBytes,
    blobCount: manifest.totals.blobCount,
    newBlobCount: manifest.totals.newBlobCount,
    tables: manifest.database.tables.length,
    rows: manifest.database.tables.reduce((sum, t) => sum + t.rows, 0),
    path: layout.backupDir(manifest.id),
    error: manifest.error,
  };
}

/** Mirrors a manifest into the `backups` table (which may not exist yet in a database being restored). */
async function record(client: pg.Client, layout: BackupLayout, manifest: BackupManifest): Promise<void> {
  await client.query(
    `insert into backups (id, kind, state, created_at, finished_at, size_bytes, total_bytes, blob_count, new_blob_count, path, error)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     on conflict (id) do update set state = excluded.state, finished_at = excluded.finished_at, size_bytes = excluded.size_bytes,
       total_bytes = excluded.total_bytes, blob_count = excluded.blob_count, new_blob_count = excluded.new_blob_count,
       path = excluded.path, error = excluded.error`,
    [
      manifest.id,
      manifest.kind,
      manifest.state,
      manifest.createdAt,
      manifest.finishedAt,
      manifest.totals.sizeBytes,
      manifest.totals.totalBytes,
      manifest.totals.blobCount,
      manifest.totals.newBlobCount,
      layout.backupDir(manifest.id),
      manifest.error,
    ],
  );
}

async function withClient<T>(databaseUrl: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/**
 * Makes a backup: the database from one snapshot, then every blob that snapshot's `blobs` table
 * names. Blobs an earlier backup holds are referenced, not copied. Idempotent per id: a complete
 * backup is returned as is, a partial one is redone. Retention runs after, under the same lock.
 */
export async function createBackup(
  env: BackupEnv,
  options: { kind: BackupKind; id?: string; retention?: boolean } = { kind: 'manual' },
): Promise<BackupSummary> {
  const layout = new BackupLayout(env.config.backupDir);
  const { blobs, done } = await blobStoreOf(env);
  const id = options.id ?? newBackupId();
  return withClient(env.databaseUrl, async (client) => {
    await client.query('select pg_advisory_lock($1)', [BACKUP_LOCK]);
    try {
      const existing = await layout.readManifest(id);
      if (existing?.state === 'complete') return summarize(layout, existing);
      await fs.rm(path.join(layout.backupDir(id), 'db'), { recursive: true, force: true });
      const manifest: BackupManifest = {
        format: MANIFEST_FORMAT,
        formatVersion: MANIFEST_VERSION,
        id,
        kind: options.kind,
        state: 'running',
        createdAt: new Date().toISOString(),
        finishedAt: null,
        error: null,
        database: { method: 'logical-copy', serverVersion: '', migrations: [], tables: [], sequences: [] },
        blobs: [],
        missingBlobs: [],
        totals: { sizeBytes: 0, totalBytes: 0, blobCount: 0, newBlobCount: 0 },
      };
      await layout.writeManifest(manifest);
      await record(client, layout, manifest);
      env.log.info({ backup: id, kind: options.kind }, 'backup started');
      try {
        const { blobs: blobRows, ...database } = await dumpDatabase(env.databaseUrl, path.join(layout.backupDir(id), 'db'));
        manifest.database = database;
        await forEachLimited(blobRows, BLOB_COPY_CONCURRENCY, async ({ sha256, size }) => {
          const already = await fileSize(layout.blobPath(sha256));
          if (already !== undefined) {
            manifest.blobs.push({ sha256, size, storedBytes: already, copied: false });
          } else if (!(await blobs.has(sha256))) {
            manifest.missingBlobs.push(sha256);
          } else {
            manifest.blobs.push({ sha256, size, storedBytes: await copyBlobIntoBackup(blobs, layout, sha256), copied: true });
          }
        });
        manifest.blobs.sort((a, b) => a.sha256.localeCompare(b.sha256));
        manifest.missingBlobs.sort();
        const dumpBytes = database.tables.reduce((sum, t) => sum + t.bytes, 0);
        const copied = manifest.blobs.filter((b) => b.copied);
        manifest.totals = {
          sizeBytes: dumpBytes + copied.reduce((sum, b) => sum + b.storedBytes, 0),
          totalBytes: dumpBytes + manifest.blobs.reduce((sum, b) => sum + b.storedBytes, 0),
          blobCount: manifest.blobs.length,
          newBlobCount: copied.length,
        };
        manifest.state = 'complete';
        manifest.finishedAt = new Date().toISOString();
        if (manifest.missingBlobs.length) {
          env.log.warn({ backup: id, missing: manifest.missingBlobs.length }, 'blobs the database lists were missing from the blob store');
        }
      } catch (error) {
        manifest.state = 'failed';
        manifest.finishedAt = new Date().toISOString();
        manifest.error = (error as Error).message;
        await layout.writeManifest(manifest);
        await record(client, layout, manifest).catch(() => {});
        env.log.error({ backup: id, err: error }, 'backup failed');
        throw error;
      }
      await layout.writeManifest(manifest);
      await record(client, layout, manifest);
      env.log.info({ backup: id, ...manifest.totals }, 'backup complete');
      if (options.retention !== false) await applyRetentionLocked(env, client);
      return summarize(layout, manifest);
    } finally {
      await client.query('select pg_advisory_unlock($1)', [BACKUP_LOCK]).catch(() => {});
      await done();
    }
  });
}

export async function listBackups(backupDir: string): Promise<BackupSummary[]> {
  const layout = new BackupLayout(backupDir);
  return (await layout.list()).map((m) => summarize(layout, m));
}

/** The id itself, or the newest complete backup for "latest". */
export async function resolveBackupId(backupDir: string, idOrLatest: string): Promise<string> {
  if (idOrLatest !== 'latest') {
    if (!BACKUP_ID.test(idOrLatest)) throw new BackupRefused(`"${idOrLatest}" is not a backup id (they look like 20261122T221000Z-3f9a1c)`);
    return idOrLatest;
  }
  const complete = (await new BackupLayout(backupDir).list()).filter((m) => m.state === 'complete');
  const latest = complete.at(-1);
  if (!latest) throw new BackupRefused(`there is no complete backup in ${backupDir}`);
  return latest.id;
}

async function completeManifest(layout: BackupLayout, id: string): Promise<BackupManifest> {
  const manifest = await layout.readManifest(id);
  if (!manifest) throw new BackupRefused(`there is no backup ${id} in ${layout.root}`);
  if (manifest.state !== 'complete') throw new BackupRefused(`backup ${id} is ${manifest.state}${manifest.error ? ` (${manifest.error})` : ''}, not complete`);
  return manifest;
}

export interface VerifyReport {
  id: string;
  ok: boolean;
  tablesChecked: number;
  blobsChecked: number;
  restoredInto?: string;
  rowsRestored?: number;
  problems: string[];
}

/** Checks every checksum (dump files and blobs), then restores the dump into a scratch database and drops it. */
export async function verifyBackup(env: BackupEnv, id: string): Promise<VerifyReport> {
  const layout = new BackupLayout(env.config.backupDir);
  const manifest = await completeManifest(layout, id);
  const problems: string[] = [];
  for (const table of manifest.database.tables) {
    const file = layout.tableFile(id, table.file);
    if ((await fileSize(file)) === undefined) {
      problems.push(`dump file ${table.file} is missing`);
      continue;
    }
    const actual = await hashFile(file);
    if (actual.sha256 !== table.sha256 || actual.bytes !== table.bytes) {
      problems.push(
        `dump file ${table.file} is corrupted: sha256 ${actual.sha256} (${actual.bytes} bytes), the manifest says ${table.sha256} (${table.bytes} bytes)`,
      );
    }
  }
  await forEachLimited(manifest.blobs, BLOB_COPY_CONCURRENCY, async (blob) => {
    const problem = await checkBackedUpBlob(layout, blob.sha256, blob.size);
    if (problem) problems.push(problem);
  });
  const report: VerifyReport = { id, ok: false, tablesChecked: manifest.database.tables.length, blobsChecked: manifest.blobs.length, problems };
  if (problems.length) return report;

  const scratchName = `molvault_verify_${randomBytes(4).toString('hex')}`;
  const scratchUrl = withDatabase(env.databaseUrl, scratchName);
  await ensureDatabase(scratchUrl);
  try {
    const restored = await restoreDatabase(scratchUrl, manifest.database, (file) => layout.tableFile(id, file), env.log);
    report.restoredInto = scratchName;
    report.rowsRestored = restored.rows;
    await withClient(scratchUrl, async (client) => {
      for (const table of manifest.database.tables) {
        const { rows } = await client.query<{ n: string }>(`select count(*) as n from "${table.name.replace(/"/g, '""')}"`);
        const count = Number(rows[0]?.n ?? 0);
        if (count !== table.rows) problems.push(`table ${table.name} restored ${count} rows, the manifest says ${table.rows}`);
      }
    });
  } catch (error) {
    problems.push(`the dump does not restore: ${(error as Error).message}`);
  } finally {
    await dropDatabase(scratchUrl).catch((error) => env.log.warn({ err: error, database: scratchName }, 'could not drop the scratch database'));
  }
  report.ok = problems.length === 0;
  return report;
}

async function blobStoreHasFiles(blobs: BlobStore): Promise<boolean> {
  for await (const _ of blobs.list()) return true;
  return false;
}

export interface RestoreReport {
  id: string;
  restorePoint: string | null;
  tables: number;
  rows: number;
  blobsRestored: number;
  blobsPresent: number;
  missingBlobs: string[];
  laterMigrations: string[];
}

/**
 * Restores a backup into the database DATABASE_URL names and the blob store under DATA_DIR.
 * A target holding data is refused unless forced; when forced, a restore point (a backup of the
 * target as it is) is taken first.
 */
export async function restoreBackup(env: BackupEnv, id: string, options: { force?: boolean } = {}): Promise<RestoreReport> {
  const layout = new BackupLayout(env.config.backupDir);
  const manifest = await completeManifest(layout, id);
  await ensureDatabase(env.databaseUrl);
  const rows = await databaseRowCount(env.databaseUrl);
  const { blobs, done } = await blobStoreOf(env);
  try {
    const hasBlobs = await blobStoreHasFiles(blobs);
    let restorePoint: string | null = null;
    if (rows > 0 || hasBlobs) {
      const what = [rows > 0 ? 'the database holds data' : '', hasBlobs ? 'the blob store holds files' : ''].filter(Boolean).join(' and ');
      if (!options.force)
        throw new BackupRefused(`refusing to restore over a target that is not empty (${what}); pass --force to replace it (a restore point is taken first)`);
      const point = await createBackup(env, { kind: 'restore-point', retention: false });
      restorePoint = point.id;
      env.log.warn({ restorePoint, backup: id }, 'restore over a non-empty target: restore point taken');
    }
    const restored = await restoreDatabase(env.databaseUrl, manifest.database, (file) => layout.tableFile(id, file), env.log);
    let blobsRestored = 0;
    let blobsPresent = 0;
    await forEachLimited(manifest.blobs, BLOB_COPY_CONCURRENCY, async (blob) => {
      if ((await blobs.size(blob.sha256)) === blob.size) {
        blobsPresent++;
        return;
      }
      await restoreBlob(blobs, layout, blob.sha256, blob.size);
      blobsRestored++;
    });
    await syncCatalogue(env);
    env.log.info({ backup: id, restorePoint, tables: restored.tables, rows: restored.rows, blobsRestored }, 'restore complete');
    return {
      id,
      restorePoint,
      tables: restored.tables,
      rows: restored.rows,
      blobsRestored,
      blobsPresent,
      missingBlobs: manifest.missingBlobs,
      laterMigrations: restored.laterMigrations,
    };
  } finally {
    await done();
  }
}

/** Makes the `backups` table say what the manifests on disk say (after a restore, it says what the backup knew). */
export async function syncCatalogue(env: BackupEnv): Promise<void> {
  const layout = new BackupLayout(env.config.backupDir);
  const manifests = await layout.list();
  await withClient(env.databaseUrl, async (client) => {
    for (const manifest of manifests) await record(client, layout, manifest);
    await client.query('delete from backups where not (id = any($1::text[]))', [manifests.map((m) => m.id)]);
  });
}

export interface RetentionReport {
  kept: string[];
  deleted: string[];
  blobsDeleted: number;
  bytesFreed: number;
}

/** Which backups retention keeps: the last N complete ones, and every one younger than D days. */
export function backupsToKeep(manifests: BackupManifest[], keepLast: number, keepDays: number, now = Date.now()): Set<string> {
  const keep = new Set<string>();
  const complete = manifests.filter((m) => m.state === 'complete').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  for (const m of complete.slice(0, keepLast)) keep.add(m.id);
  for (const m of manifests) {
    if (now - Date.parse(m.createdAt) < keepDays * 86400_000) keep.add(m.id);
  }
  return keep;
}

async function applyRetentionLocked(env: BackupEnv, client: pg.Client): Promise<RetentionReport> {
  const layout = new BackupLayout(env.config.backupDir);
  const manifests = await layout.list();
  const keep = backupsToKeep(manifests, env.config.backupKeepLast, env.config.backupKeepDays);
  const report: RetentionReport = { kept: [], deleted: [], blobsDeleted: 0, bytesFreed: 0 };
  const referenced = new Set<string>();
  for (const manifest of manifests) {
    if (keep.has(manifest.id)) {
      report.kept.push(manifest.id);
      for (const blob of manifest.blobs) referenced.add(blob.sha256);
      continue;
    }
    const dir = layout.backupDir(manifest.id);
    for await (const file of walkFiles(dir)) report.bytesFreed += (await fileSize(file)) ?? 0;
    // The manifest goes first, so a crash halfway leaves no manifest pointing at missing files.
    await fs.rm(layout.manifestPath(manifest.id), { force: true });
    await fs.rm(dir, { recursive: true, force: true });
    await client.query('delete from backups where id = $1', [manifest.id]);
    report.deleted.push(manifest.id);
  }
  for await (const file of walkFiles(path.join(layout.root, 'blobs'))) {
    const sha256 = path.basename(file).replace(/\.gz$/, '');
    if (referenced.has(sha256)) continue;
    report.bytesFreed += (await fileSize(file)) ?? 0;
    await fs.rm(file, { force: true });
    report.blobsDeleted++;
  }
  if (report.deleted.length || report.blobsDeleted) env.log.info(report, 'backup retention applied');
  return report;
}

/** Retention on its own (under the backup lock, so never while a backup copies blobs). */
export async function applyRetention(env: BackupEnv): Promise<RetentionReport> {
  return withClient(env.databaseUrl, async (client) => {
    await client.query('select pg_advisory_lock($1)', [BACKUP_LOCK]);
    try {
      return await applyRetentionLocked(env, client);
    } finally {
      await client.query('select pg_advisory_unlock($1)', [BACKUP_LOCK]).catch(() => {});
    }
  });
}
