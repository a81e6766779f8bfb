import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupLayout } from '../src/backup/layout.js';
import { applyRetention, type BackupEnv, createBackup } from '../src/backup/service.js';
import { QUEUE_NAMES } from '../src/config/index.js';
import { createLogger } from '../src/lib/logger.js';
import { backupJob } from '../src/queue/jobs.js';
import { StorageMonitor } from '../src/services/maintenance/storageMonitor.js';
import { LocalBlobStore } from '../src/storage/localBlobStore.js';
import { ownDatabase } from './helpers/database.js';
import { client, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** Puts bytes into the blob store and, unless told otherwise, a row for them. */
async function seedBlob(stack: Stack, content: string, options: { row?: boolean; file?: boolean } = {}) {
  const hash = sha256(content);
  if (options.file !== false) {
    const store = new LocalBlobStore(stack.ctx.config.blobDir);
    await store.put(Readable.from([Buffer.from(content)]), { sha256: hash, size: Buffer.byteLength(content) });
  }
  if (options.row !== false) {
    await stack.ctx.orm.em
      .fork()
      .execute('insert into blobs (sha256, size, stored_size, media_type, created_at) values (?, ?, ?, ?, now())', [
        hash,
        content.length,
        content.length,
        'text/plain',
      ]);
  }
  return hash;
}

describe('storage monitoring', () => {
  let stack: Stack;
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let admin: TestUser;
  let user: TestUser;
  const uploaded: Buffer[] = [];

  beforeAll(async () => {
    database = await ownDatabase('storage');
    stack = await startStack({
      config: { databaseUrl: database.url },
      env: { STORAGE_SCAN_TTL_MS: '0', DISK_FREE_WARN_BYTES: '0', DISK_FREE_WARN_PERCENT: '0' },
    });
    admin = await userFactory(stack.ctx, { admin: true });
    user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const project = await api.post('/v1/projects', { name: 'measured' });
    uploaded.push(await fixture('ngl_1crn.pdb'), await fixture('chemfiles_insertion-code.pdb'));
    for (const [i, content] of uploaded.entries()) {
      const response = await api.upload(`/v1/projects/${project.body.id}/structures`, { name: `s${i}.pdb`, content });
      expect((await waitForUpload(api, response.body.upload.id)).state).toBe('stored');
    }
  });
  afterAll(async () => {
    await stack?.stop();
    await database?.drop();
  });

  it('reports disk, blobs, staging, orphans, backups and queues to administrators only', async () => {
    const rowOnly = 'a blob row whose file is gone';
    await seedBlob(stack, rowOnly, { file: false });
    await seedBlob(stack, 'a file nobody recorded', { row: false });
    await fs.mkdir(stack.ctx.config.stagingDir, { recursive: true });
    await fs.writeFile(path.join(stack.ctx.config.stagingDir, 'left-behind'), Buffer.alloc(1234));

    const response = await client(stack.url, admin.token).get('/v1/admin/storage');
    expect(response.status).toBe(200);
    const report = response.body;
    expect(report.blobs).toEqual({
      count: 3,
      bytes: uploaded[0].length + uploaded[1].length + rowOnly.length,
      storedBytes: uploaded[0].length + uploaded[1].length + rowOnly.length,
    });
    expect(report.orphans).toMatchObject({ blobRowsWithoutFiles: 1, blobFilesWithoutRows: 1, source: 'scan' });
    expect(report.staging).toEqual({ files: 1, bytes: 1234 });
    expect(report.disk.totalBytes).toBeGreaterThan(0);
    expect(report.disk.freeBytes).toBeGreaterThan(0);
    expect(report.disk.freeBytes).toBeLessThanOrEqual(report.disk.totalBytes - report.disk.usedBytes);
    expect(report.disk.warning).toBeNull();
    expect(report.backups).toMatchObject({ count: 0, lastSuccessful: null });
    expect(Object.keys(report.queues).sort()).toEqual([...QUEUE_NAMES].sort());
    expect(report.queues.ingest.completed).toBeGreaterThanOrEqual(2);

    const refused = await client(stack.url, user.token).get('/v1/admin/storage');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect((await client(stack.url).get('/v1/admin/storage')).status).toBe(401);

    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toMatch(/^molvault_blobs 3$/m);
    expect(metrics).toMatch(/^molvault_orphan_blob_files 1$/m);
    expect(metrics).toMatch(/^molvault_orphan_blob_rows 1$/m);
    expect(metrics).toMatch(/^molvault_staging_bytes 1234$/m);
    expect(metrics).toMatch(/^molvault_disk_free_bytes \d+/m);
    expect(metrics).toMatch(/^molvault_queue_jobs\{queue="backup",state="failed"\} 0$/m);
    expect(metrics).toMatch(/^molvault_last_backup_timestamp_seconds 0$/m); // 0: none yet
  });

  it('runs the backup job from its queue, on a daily schedule, and reports the last backup', async () => {
    const scheduler = await stack.ctx.queues.backup.getJobScheduler('backup-daily');
    expect(scheduler).toMatchObject({ pattern: '0 3 * * *', tz: 'UTC' });

    const data = { backupId: '20261122T120000Z-00ab12', kind: 'manual' as const };
    const job = await stack.ctx.queues.backup.add('backup', data, { jobId: backupJob.jobId(data) });
    await expect.poll(() => job.getState(), { timeout: 60_000, interval: 200 }).toBe('completed');
    const { returnvalue } = (await stack.ctx.queues.backup.getJob(job.id as string)) ?? {};
    // Three blob rows, one without a file: two backed up, one noted as missing.
    expect(returnvalue).toMatchObject({ id: data.backupId, state: 'complete', blobCount: 2, newBlobCount: 2 });
    const manifest = await new BackupLayout(stack.ctx.config.backupDir).readManifest(data.backupId);
    expect(manifest?.missingBlobs).toEqual([sha256('a blob row whose file is gone')]);

    await expect
      .poll(async () => (await client(stack.url, admin.token).get('/v1/admin/storage')).body.backups.lastSuccessful?.id, { timeout: 5000 })
      .toBe(data.backupId);
    const { body } = await client(stack.url, admin.token).get('/v1/admin/storage');
    expect(body.backups.lastSuccessful).toMatchObject({ sizeBytes: returnvalue.sizeBytes, blobCount: 2 });
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toContain(`molvault_last_backup_size_bytes ${returnvalue.sizeBytes}`);
    const finished = Date.parse(body.backups.lastSuccessful.finishedAt) / 1000;
    expect(metrics).toContain(`molvault_last_backup_timestamp_seconds ${finished}`);
  });

  it('makes, lists and verifies backups through /v1/admin/backups, for administrators only', async () => {
    const api = client(stack.url, admin.token);
    const made = await api.post('/v1/admin/backups');
    expect(made.status).toBe(202);
    expect(made.headers.get('location')).toBe(`/v1/jobs/${made.body.job.id}`);
    const finished = async (jobId: string) => {
      await expect.poll(async () => (await api.get(`/v1/jobs/${jobId}`)).body.state, { timeout: 60_000, interval: 200 }).toBe('completed');
      return (await api.get(`/v1/jobs/${jobId}`)).body.result;
    };
    expect(await finished(made.body.job.id)).toMatchObject({ id: made.body.backup.id, state: 'complete', kind: 'manual' });
    const listed = await api.get('/v1/admin/backups');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((b: { id: string }) => b.id)).toContain(made.body.backup.id);

    const verify = await api.post(`/v1/admin/backups/${made.body.backup.id}/verify`);
    expect(verify.status).toBe(202);
    expect(await finished(verify.body.job.id)).toMatchObject({ id: made.body.backup.id, ok: true, problems: [] });
    const unknown = await api.post('/v1/admin/backups/20200101T000000Z-000000/verify');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    const other = client(stack.url, user.token);
    expect((await other.get('/v1/admin/backups')).status).toBe(403);
    expect((await other.post('/v1/admin/backups')).status).toBe(403);
    expect((await other.post(`/v1/admin/backups/${made.body.backup.id}/verify`)).status).toBe(403);
  });

  it('keeps the last N backups and those younger than D days, and drops backup blobs no kept backup needs', async () => {
    const backupDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-test-retention-'));
    const env: BackupEnv = {
      config: { backupDir, blobDir: stack.ctx.config.blobDir, backupKeepLast: 2, backupKeepDays: 0 },
      databaseUrl: database.url,
      log: createLogger('silent'),
    };
    const layout = new BackupLayout(backupDir);
    try {
      const passing = await seedBlob(stack, 'bytes only the first backup holds');
      const first = await createBackup(env, { kind: 'manual' });
      expect(await fs.stat(layout.blobPath(passing))).toBeTruthy();
      await stack.ctx.orm.em.fork().execute('delete from blobs where sha256 = ?', [passing]);
      await new LocalBlobStore(stack.ctx.config.blobDir).delete(passing);

      const second = await createBackup(env, { kind: 'manual' });
      expect((await layout.list()).map((m) => m.id)).toEqual([first.id, second.id]);
      const third = await createBackup(env, { kind: 'manual' });
      expect((await layout.list()).map((m) => m.id)).toEqual([second.id, third.id]);
      await expect(fs.stat(layout.backupDir(first.id))).rejects.toThrow();
      await expect(fs.stat(layout.blobPath(passing))).rejects.toThrow();
      // Blobs the kept backups reference stay.
      for (const content of uploaded) expect((await fs.stat(layout.blobPath(sha256(content)))).size).toBeGreaterThan(0);
      const rows = await stack.ctx.orm.em
        .fork()
        .execute<{ id: string }[]>('select id from backups where id in (?, ?, ?) order by id', [first.id, second.id, third.id]);
      expect(rows.map((r) => r.id).sort()).toEqual([second.id, third.id].sort());

      // Age: keep the last one, and whatever is younger than 30 days.
      const age = async (id: string, days: number) => {
        const manifest = await layout.readManifest(id);
        if (!manifest) throw new Error(`no manifest ${id}`);
        manifest.createdAt = new Date(Date.now() - days * 86400_000).toISOString();
        await layout.writeManifest(manifest);
      };
      env.config.backupKeepLast = 1;
      env.config.backupKeepDays = 30;
      await age(second.id, 40);
      await age(third.id, 10);
      const fourth = await createBackup(env, { kind: 'manual' });
      expect((await layout.list()).map((m) => m.id).sort()).toEqual([third.id, fourth.id].sort());
      await age(third.id, 31);
      const report = await applyRetention(env);
      expect(report.deleted).toEqual([third.id]);
      expect((await layout.list()).map((m) => m.id)).toEqual([fourth.id]);
    } finally {
      await fs.rm(backupDir, { recursive: true, force: true });
    }
  });
});

describe('the disk-free warning', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: false, env: { DISK_FREE_WARN_BYTES: '1000TiB' } });
  });
  afterAll(() => stack?.stop());

  it('appears in /readyz (which stays ready) and /v1/admin/storage when free space is under the threshold', async () => {
    const response = await fetch(`${stack.url}/readyz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { ok: boolean; warnings: string[]; checks: { name: string; ok: boolean }[] };
    expect(body.ok).toBe(true);
    expect(body.warnings).toEqual([expect.stringContaining('under the warning threshold')]);
    expect(body.checks).toContainEqual(expect.objectContaining({ name: 'disk', ok: true }));
    const admin = await userFactory(stack.ctx, { admin: true });
    const storage = await client(stack.url, admin.token).get('/v1/admin/storage');
    expect(storage.body.disk.warning).toContain('DISK_FREE_WARN_BYTES');
    expect(await (await fetch(`${stack.url}/metrics`)).text()).toMatch(/^molvault_disk_free_warning 1$/m);
  });

  it('is logged, once per five minutes however often the disk is looked at', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const monitor = new StorageMonitor({ ...stack.ctx, log: pino({ level: 'warn' }, sink) });
    await monitor.disk();
    await monitor.disk();
    const warnings = lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'disk space low');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, dataDir: stack.ctx.config.dataDir });
    expect(warnings[0].freeBytes).toBeGreaterThan(0);
  });
});
