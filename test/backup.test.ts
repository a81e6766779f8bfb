import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walkFiles } from '../src/backup/blobs.js';
import { BackupLayout, type BackupManifest } from '../src/backup/layout.js';
import { dropDatabase, ensureDatabase } from '../src/runtime/postgres.js';
import { ownDatabase } from './helpers/database.js';
import { client, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');
const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The audit entries the command line recorded, oldest first. */
async function commandLineAudit(url: string) {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return (
      await db.query<{ action: string; target_id: string | null; actor_user_id: string | null }>(
        `select action, target_id, actor_user_id from audit_events where details->>'via' = 'command line' order by created_at, id`,
      )
    ).rows;
  } finally {
    await db.end();
  }
}

/**
 * Every row of every table (as JSON text, sorted) and the applied migrations: what a restore must
 * bring back. Not `maintenance_runs`: the test's own workers stamp it whenever a scheduled reconcile
 * finishes, between any two looks.
 */
async function databaseState(url: string) {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const tables = (
      await db.query<{ name: string }>(
        `select relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind = 'r' and relname not in ('backups', 'mikro_orm_migrations', 'maintenance_runs') order by relname`,
      )
    ).rows.map((r) => r.name);
    const rows: Record<string, string[]> = {};
    // What the command line itself records (backups taken, restores) is left out: a restore brings
    // back the rows a backup holds, and then records itself.
    const only = (table: string) => (table === 'audit_events' ? ` where coalesce(t.details->>'via', '') <> 'command line'` : '');
    for (const table of tables) {
      rows[table] = (await db.query<{ j: string }>(`select row_to_json(t)::text as j from "${table}" t${only(table)}`)).rows.map((r) => r.j).sort();
    }
    const migrations = (await db.query<{ name: string }>('select name from mikro_orm_migrations order by id')).rows.map((r) => r.name);
    return { rows, migrations };
  } finally {
    await db.end();
  }
}

/** sha256 of every file in a blob store, by its name. */
async function blobStoreState(blobDir: string) {
  const state: Record<string, string> = {};
  for await (const file of walkFiles(path.join(blobDir, 'sha256'))) state[path.basename(file)] = sha256(await fs.readFile(file));
  return state;
}

describe('backup and restore', () => {
  let stack: Stack | undefined;
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let backupDir: string;
  let dataDir: string;
  const originals: Record<string, Buffer> = {};
  let firstBackup: { id: string; blobCount: number; newBlobCount: number };
  let secondBackup: { id: string; blobCount: number; newBlobCount: number; sizeBytes: number };
  let before: Awaited<ReturnType<typeof databaseState>>;
  let blobsBefore: Record<string, string>;

  /** The real `molvault` command against this file's database, DATA_DIR and BACKUP_DIR. */
  async function molvault(args: string[]) {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
        env: { ...process.env, DATABASE_URL: database.url, DATA_DIR: dataDir, BACKUP_DIR: backupDir, LOG_LEVEL: 'warn' },
        timeout: 120_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  beforeAll(async () => {
    database = await ownDatabase('backup');
    backupDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-test-backups-'));
    stack = await startStack({ config: { databaseUrl: database.url }, env: { BACKUP_DIR: backupDir } });
    dataDir = stack.dataDir;
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const project = await api.post('/v1/projects', { name: 'to keep safe', description: 'backed up', tags: ['safe'], metadata: { lab: 'B2' } });
    const projectId = project.body.id;
    originals.v1 = await fixture('ngl_1crn.pdb');
    originals.v2 = Buffer.concat([originals.v1, Buffer.from('REMARK 999 REFINED\n')]);
    originals.cif = await fixture('ngl_1CRN.cif');
    const first = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: '1crn.pdb', content: originals.v1 },
      { name: 'Crambin', tags: ['plant', 'x-ray'], metadata: JSON.stringify({ organism: 'Crambe hispanica', note: 'ünïcode ✓' }) },
      { prefer: 'wait=30' },
    );
    expect(first.status).toBe(201);
    const second = await api.upload(
      `/v1/structures/${first.body.structure.id}/versions`,
      { name: '1crn-v2.pdb', content: originals.v2 },
      { message: 'refined' },
    );
    expect((await waitForUpload(api, second.body.upload.id)).state).toBe('stored');
    const third = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.cif', content: originals.cif }, { name: 'Crambin (mmCIF)' });
    expect((await waitForUpload(api, third.body.upload.id)).state).toBe('stored');
  });

  afterAll(async () => {
    await stack?.stop();
    await database?.drop();
    await fs.rm(backupDir, { recursive: true, force: true });
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('creates a backup of the database and every blob, and lists it as JSON', async () => {
    const created = await molvault(['backup', 'create']);
    expect(created.stderr).toBe('');
    expect(created.code, created.stderr).toBe(0);
    firstBackup = JSON.parse(created.stdout);
    expect(firstBackup).toMatchObject({ kind: 'manual', state: 'complete', blobCount: 3, newBlobCount: 3 });

    const listed = await molvault(['backup', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: firstBackup.id, state: 'complete', blobCount: 3 })]);
    // The database records it too.
    const rows = await stack?.ctx.orm.em.fork().execute<{ id: string; state: string; blob_count: number }[]>('select id, state, blob_count from backups');
    expect(rows).toEqual([{ id: firstBackup.id, state: 'complete', blob_count: 3 }]);
  });

  it('copies only new blobs into a second backup and references the rest', async () => {
    const api = client(stack?.url as string, (await userFactory(stack?.ctx as Stack['ctx'])).token);
    const project = await api.post('/v1/projects', { name: 'later' });
    originals.multi = await fixture('ngl_multi-models-example.pdb');
    const upload = await api.upload(`/v1/projects/${project.body.id}/structures`, { name: 'multi.pdb', content: originals.multi }, { tags: 'nmr' });
    expect((await waitForUpload(api, upload.body.upload.id)).state).toBe('stored');

    const layout = new BackupLayout(backupDir);
    const firstManifest = (await layout.readManifest(firstBackup.id)) as BackupManifest;
    const mtimes = await Promise.all(firstManifest.blobs.map(async (b) => (await fs.stat(layout.blobPath(b.sha256))).mtimeMs));

    const created = await molvault(['backup', 'create']);
    expect(created.code, created.stderr).toBe(0);
    secondBackup = JSON.parse(created.stdout);
    expect(secondBackup).toMatchObject({ state: 'complete', blobCount: 4, newBlobCount: 1 });
    const manifest = (await layout.readManifest(secondBackup.id)) as BackupManifest;
    const copied = manifest.blobs.filter((b) => b.copied).map((b) => b.sha256);
    expect(copied).toEqual([sha256(originals.multi)]);
    // The blobs the first backup holds were not written again.
    expect(await Promise.all(firstManifest.blobs.map(async (b) => (await fs.stat(layout.blobPath(b.sha256))).mtimeMs))).toEqual(mtimes);
    const dumpBytes = manifest.database.tables.reduce((sum, t) => sum + t.bytes, 0);
    expect(secondBackup.sizeBytes).toBe(dumpBytes + manifest.blobs.find((b) => b.copied)!.storedBytes);
    const storedFiles: string[] = [];
    for await (const file of walkFiles(path.join(backupDir, 'blobs'))) storedFiles.push(path.basename(file));
    expect(storedFiles.sort()).toEqual(manifest.blobs.map((b) => `${b.sha256}.gz`).sort());

    before = await databaseState(database.url);
    blobsBefore = await blobStoreState(path.join(dataDir, 'blobs'));
    expect(Object.keys(blobsBefore)).toHaveLength(4);
    expect(before.rows.structure_versions).toHaveLength(4);
  });

  it('verifies a sound backup: every checksum, and the dump restores into a scratch database', async () => {
    const verified = await molvault(['backup', 'verify', '--latest']);
    expect(verified.code, verified.stderr).toBe(0);
    const report = JSON.parse(verified.stdout);
    expect(report).toMatchObject({ id: secondBackup.id, ok: true, blobsChecked: 4, problems: [] });
    expect(report.rowsRestored).toBeGreaterThan(0);
    const scratch = await stack?.ctx.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from pg_database where datname = ?`, [report.restoredInto]);
    expect(Number(scratch?.[0]?.n)).toBe(0); // dropped again
  });

  it('finds a flipped byte in a dump file and in a backed-up blob', async () => {
    const layout = new BackupLayout(backupDir);
    const manifest = (await layout.readManifest(secondBackup.id)) as BackupManifest;
    const flip = async (file: string, body: () => Promise<void>) => {
      const original = await fs.readFile(file);
      const damaged = Buffer.from(original);
      damaged[Math.floor(damaged.length / 2)] ^= 0x01;
      await fs.writeFile(file, damaged);
      try {
        await body();
      } finally {
        await fs.writeFile(file, original);
      }
    };
    const table = manifest.database.tables.find((t) => t.name === 'structure_versions')!;
    await flip(layout.tableFile(secondBackup.id, table.file), async () => {
      const result = await molvault(['backup', 'verify', secondBackup.id]);
      expect(result.code).toBe(1);
      const report = JSON.parse(result.stdout);
      expect(report.ok).toBe(false);
      expect(report.problems).toEqual([expect.stringContaining(`dump file ${table.file} is corrupted`)]);
    });
    const blob = sha256(originals.v1);
    await flip(layout.blobPath(blob), async () => {
      const result = await molvault(['backup', 'verify', secondBackup.id]);
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout).problems).toEqual([expect.stringContaining(`blob ${blob}`)]);
    });
    expect((await molvault(['backup', 'verify', secondBackup.id])).code).toBe(0);
  });

  it('refuses to restore over a database and blob store that hold data', async () => {
    const result = await molvault(['backup', 'restore', '--latest']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('not empty');
    expect(result.stderr).toContain('--force');
    expect(await databaseState(database.url)).toEqual(before);
    expect((await molvault(['backup', 'list', '--json'])).stdout).not.toContain('restore-point');
  });

  it('restores everything into a wiped database and blob store', async () => {
    await stack?.stop();
    stack = undefined;
    await dropDatabase(database.url);
    await ensureDatabase(database.url);
    await fs.rm(dataDir, { recursive: true, force: true });
    expect(await blobStoreState(path.join(dataDir, 'blobs'))).toEqual({});

    // The manifests on disk are the record: listing needs no database.
    const listed = await molvault(['backup', 'list', '--json']);
    expect(JSON.parse(listed.stdout).map((b: { id: string }) => b.id)).toEqual([firstBackup.id, secondBackup.id]);

    const restored = await molvault(['backup', 'restore', secondBackup.id]);
    expect(restored.stderr).toBe('');
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ id: secondBackup.id, restorePoint: null, blobsRestored: 4, missingBlobs: [] });

    expect(await databaseState(database.url)).toEqual(before);
    // The first backup's record came back with the second backup's rows; the restore recorded itself.
    expect(await commandLineAudit(database.url)).toEqual([
      { action: 'admin.backup.create', target_id: firstBackup.id, actor_user_id: null },
      { action: 'admin.backup.restore', target_id: secondBackup.id, actor_user_id: null },
    ]);
    expect(await blobStoreState(path.join(dataDir, 'blobs'))).toEqual(blobsBefore);
    for (const [name, hash] of Object.entries(blobsBefore)) expect(hash).toBe(name);

    // A molvault on the restored data serves the same bytes, and knows its backups again.
    stack = await startStack({ config: { databaseUrl: database.url, dataDir, blobDir: path.join(dataDir, 'blobs') }, env: { BACKUP_DIR: backupDir } });
    const em = stack.ctx.orm.em.fork();
    const [version] = await em.execute<{ structure_id: string; owner_id: string }[]>(
      `select v.structure_id, s.owner_id from structure_versions v join structures s on s.id = v.structure_id where v.blob_sha256 = ?`,
      [sha256(originals.cif)],
    );
    const { createToken } = await import('../src/services/auth/auth.js');
    const { token } = await createToken(em, version.owner_id);
    const download = await client(stack.url, token).raw(`/v1/structures/${version.structure_id}/download`);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(originals.cif)).toBe(true);
    expect((await em.execute<{ id: string }[]>('select id from backups order by id')).map((r) => r.id).sort()).toEqual(
      [firstBackup.id, secondBackup.id].sort(),
    );
  });

  it('restores over a non-empty target when forced, after taking a restore point', async () => {
    await stack?.stop();
    stack = undefined;
    const current = await databaseState(database.url);
    const result = await molvault(['backup', 'restore', firstBackup.id, '--force']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.restorePoint).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    const listed = JSON.parse((await molvault(['backup', 'list', '--json'])).stdout);
    expect(listed).toContainEqual(
      expect.objectContaining({ id: report.restorePoint, kind: 'restore-point', state: 'complete', blobCount: 4, newBlobCount: 0 }),
    );
    // The database is as the first backup had it (three structure versions), the restore point as it was before.
    const now = await databaseState(database.url);
    expect(now.rows.structure_versions).toHaveLength(3);
    expect(now.migrations).toEqual(before.migrations);

    // And back again from the restore point.
    const back = await molvault(['backup', 'restore', report.restorePoint, '--force']);
    expect(back.code, back.stderr).toBe(0);
    expect(await databaseState(database.url)).toEqual(current);
  });
});
