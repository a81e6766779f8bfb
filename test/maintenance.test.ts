import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupJob, gcJob } from '../src/queue/jobs.js';
import { collectGarbage } from '../src/services/maintenance/gc.js';
import { announceBlobPuts, assertBlobsStored, BlobCollectedMeanwhileError, confirmBlobsStored, lockBlob, recordBlob } from '../src/services/quota/blobs.js';
import type { LocalStaging } from '../src/storage/staging.js';
import { client, type TestUser, userFactory } from './helpers/factories.js';
import { runJob } from './helpers/jobs.js';
import { type Stack, startStack } from './helpers/stack.js';

const HOUR = 3600_000;
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');
/** Maintenance with one-hour ages, and schedules that do not fire during the test (we run the jobs ourselves). */
const env = {
  GC_GRACE_MS: String(HOUR),
  STAGING_MAX_AGE_MS: String(HOUR),
  RESERVATION_MAX_AGE_MS: String(HOUR),
  STUCK_UPLOAD_AFTER_MS: String(2 * HOUR),
  RECONCILE_EVERY_MS: String(24 * HOUR),
  CLEANUP_SCHEDULE: '0 0 1 1 *',
  GC_SCHEDULE: '0 0 1 1 *',
  USAGE_SCHEDULE: '0 0 1 1 *',
};
const ago = (ms: number) => new Date(Date.now() - ms);
const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  );

describe('maintenance: garbage collection and cleanup', () => {
  let stack: Stack;
  let user: TestUser;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack({ env });
    user = await userFactory(stack.ctx);
    projectId = (await client(stack.url, user.token).post('/v1/projects', { name: 'maintenance' })).body.id;
  });
  afterAll(() => stack?.stop());

  /** A blob with its row and file and no reference, created and (if given) marked orphaned at the given times. */
  async function orphanBlob(createdAt: Date, orphanedAt: Date | null, bytes = randomBytes(2048)): Promise<string> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await stack.ctx.orm.em.fork().transactional(async (tx) => {
      await lockBlob(tx, sha256);
      await stack.ctx.blobs.put(Readable.from([bytes]), { sha256, size: bytes.length });
      await recordBlob(tx, { sha256, size: bytes.length, storedSize: bytes.length, mediaType: 'application/octet-stream' });
      await tx.execute('update blobs set created_at = ?, orphaned_at = ? where sha256 = ?', [createdAt, orphanedAt, sha256]);
    });
    return sha256;
  }

  async function blobRow(sha256: string) {
    const [row] = await stack.ctx.orm.em.fork().execute<{ orphaned_at: Date | null }[]>('select orphaned_at from blobs where sha256 = ?', [sha256]);
    return row;
  }

  it('removes an orphan blob past the grace period and keeps a referenced one and a young one', async () => {
    const old = await orphanBlob(ago(3 * HOUR), ago(2 * HOUR));
    const unmarked = await orphanBlob(ago(3 * HOUR), null); // old, but nobody had noticed it was unreferenced
    const young = await orphanBlob(ago(60_000), null);
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const stored = await client(stack.url, user.token).upload(
      `/v1/projects/${projectId}/structures`,
      { name: '1crn.pdb', content: bytes },
      {},
      { prefer: 'wait=30' },
    );
    expect(stored.status).toBe(201);
    const referenced = stored.body.structure.currentVersion.sha256;
    // Even an old blob wrongly marked orphaned is kept while a version refers to it.
    await stack.ctx.orm.em.fork().execute('update blobs set created_at = ?, orphaned_at = ? where sha256 = ?', [ago(3 * HOUR), ago(2 * HOUR), referenced]);

    const report = await runJob(stack.ctx, gcJob, { stamp: 'first' });
    expect(report.blobs.items.map((i: { sha256: string }) => i.sha256)).toContain(old);
    expect(await blobRow(old)).toBeUndefined();
    expect(await exists(stack.ctx.blobs.location(old))).toBe(false);
    for (const kept of [unmarked, young, referenced]) {
      expect(await blobRow(kept)).toBeDefined();
      expect(await exists(stack.ctx.blobs.location(kept))).toBe(true);
    }
    // Marks: the unreferenced ones now carry the time they were found; the referenced one is cleared.
    expect((await blobRow(unmarked)).orphaned_at).not.toBeNull();
    expect((await blobRow(young)).orphaned_at).not.toBeNull();
    expect((await blobRow(referenced)).orphaned_at).toBeNull();
    expect(report.blobs.rescued).toBeGreaterThanOrEqual(1);

    // Once the grace period has passed since it was found unreferenced, the old one goes too.
    await stack.ctx.orm.em.fork().execute('update blobs set orphaned_at = ? where sha256 = ?', [ago(2 * HOUR), unmarked]);
    await runJob(stack.ctx, gcJob, { stamp: 'second' });
    expect(await blobRow(unmarked)).toBeUndefined();
    expect(await blobRow(young)).toBeDefined();
    expect(await blobRow(referenced)).toBeDefined();
    expect((await client(stack.url, user.token).raw(`/v1/structures/${stored.body.structure.id}/download`)).status).toBe(200);
  });

  it('keeps a blob that gets a new reference while collection is deleting it', async () => {
    const sha256 = await orphanBlob(ago(3 * HOUR), ago(2 * HOUR));
    const uploadId = randomUUID();
    let collecting: ReturnType<typeof collectGarbage> | undefined;
    // An upload of the same bytes, as ingest records it: under the blob's lock, in one transaction.
    await stack.ctx.orm.em.fork().transactional(async (tx) => {
      await lockBlob(tx, sha256);
      // Collection starts now: it sees the blob unreferenced (this transaction is not committed) and waits for the lock.
      collecting = collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
      await expect
        .poll(
          async () => {
            const [row] = await stack.ctx.orm.em
              .fork()
              .execute<{ n: string }[]>(`select count(*) as n from pg_locks where locktype = 'advisory' and not granted`);
            return Number(row.n);
          },
          { timeout: 20_000, interval: 20 },
        )
        .toBeGreaterThan(0);
      await tx.execute(
        `insert into uploads (id, owner_id, project_id, structure_id, creates_structure, state, filename, received_bytes, blob_sha256, created_at, updated_at)
         values (?, ?, ?, ?, true, 'processing', 'same.bin', 2048, ?, now(), now())`,
        [uploadId, user.id, projectId, randomUUID(), sha256],
      );
    });
    const report = await collecting;
    expect(report?.blobs.keptReferenced).toBeGreaterThanOrEqual(1);
    expect(report?.blobs.items.map((i) => i.sha256)).not.toContain(sha256);
    expect(await blobRow(sha256)).toBeDefined();
    expect(await exists(stack.ctx.blobs.location(sha256))).toBe(true);
    await stack.ctx.orm.em.fork().execute(`update uploads set state = 'failed', blob_sha256 = null where id = ?`, [uploadId]);
  });

  it('work that put its blob before its transaction finds it collected meanwhile: nothing is recorded, and done again it is stored', async () => {
    const bytes = randomBytes(2048);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const put = () => stack.ctx.blobs.put(Readable.from([bytes]), { sha256, size: bytes.length });
    // An old orphan of the same content: its row marked long ago, its file there.
    await orphanBlob(ago(3 * HOUR), ago(2 * HOUR), bytes);
    const record = () =>
      stack.ctx.orm.em.fork().transactional(async (tx) => {
        await lockBlob(tx, sha256);
        await assertBlobsStored(stack.ctx.blobs, [sha256]);
        await recordBlob(tx, { sha256, size: bytes.length, storedSize: bytes.length, mediaType: 'application/octet-stream' });
      });
    // The work puts the bytes (they are there already), then collection takes them before its transaction runs.
    expect(await put()).toEqual({ created: false });
    const report = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
    expect(report.blobs.items.map((i) => i.sha256)).toContain(sha256);
    const refused = await record().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BlobCollectedMeanwhileError);
    expect(refused).toMatchObject({ status: 503, code: 'blob_collected_meanwhile' });
    expect(await blobRow(sha256)).toBeUndefined();
    // Done again, as a retried job or request does: put anew, found under the lock, recorded.
    expect(await put()).toEqual({ created: true });
    await record();
    expect(await blobRow(sha256)).toBeDefined();
    expect(await stack.ctx.blobs.verify(sha256)).toBe(true);
  });

  it('a put announced under the lock holds its blob: collection spares it, and recording confirms it without asking the store', async () => {
    const bytes = randomBytes(2048);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const put = () => stack.ctx.blobs.put(Readable.from([bytes]), { sha256, size: bytes.length });
    // An old orphan of the same content, its row marked long ago.
    await orphanBlob(ago(3 * HOUR), ago(2 * HOUR), bytes);
    const announcement = await stack.ctx.orm.em.fork().transactional(async (tx) => {
      await lockBlob(tx, sha256);
      return announceBlobPuts(tx, [sha256, sha256]);
    });
    expect(announcement.intents).toHaveLength(1);
    expect(await put()).toEqual({ created: false });
    const report = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
    expect(report.blobs.items.map((i) => i.sha256)).not.toContain(sha256);
    expect(await stack.ctx.blobs.has(sha256)).toBe(true);
    // The store is the real one; only its lookups are counted.
    const asked: string[] = [];
    const counting = new Proxy(stack.ctx.blobs, {
      get(target, property, receiver) {
        if (property !== 'has') return Reflect.get(target, property, receiver);
        return (hash: string) => {
          asked.push(hash);
          return target.has(hash);
        };
      },
    });
    await stack.ctx.orm.em.fork().transactional(async (tx) => {
      await lockBlob(tx, sha256);
      await confirmBlobsStored(tx, counting, announcement);
      await recordBlob(tx, { sha256, size: bytes.length, storedSize: bytes.length, mediaType: 'application/octet-stream' });
    });
    expect(asked).toEqual([]);
    const [left] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from blob_put_intents where sha256 = ?', [sha256]);
    expect(Number(left?.n)).toBe(0);
  });

  it('an announcement whose hold ran out holds nothing: collection takes the blob, recording asks the store and refuses, cleanup drops the row', async () => {
    const sha256 = await orphanBlob(ago(3 * HOUR), ago(2 * HOUR));
    const announcement = await stack.ctx.orm.em.fork().transactional(async (tx) => {
      await lockBlob(tx, sha256);
      return announceBlobPuts(tx, [sha256]);
    });
    await stack.ctx.orm.em.fork().execute(`update blob_put_intents set created_at = now() - interval '7 hours' where sha256 = ?`, [sha256]);
    const report = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
    expect(report.blobs.items.map((i) => i.sha256)).toContain(sha256);
    const refused = await stack.ctx.orm.em
      .fork()
      .transactional(async (tx) => {
        await lockBlob(tx, sha256);
        await confirmBlobsStored(tx, stack.ctx.blobs, announcement);
      })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BlobCollectedMeanwhileError);
    // Consumed by the refused transaction? No: it rolled back, so the stale row is the cleanup's.
    await runJob(stack.ctx, cleanupJob, { stamp: 'stale-announcement' });
    const [left] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from blob_put_intents where sha256 = ?', [sha256]);
    expect(Number(left?.n)).toBe(0);
  });

  it('an upload whose content lies in the store as an old file without a row records it, and collection keeps it', async () => {
    const bytes = Buffer.concat([Buffer.from(`REMARK 999 ${randomUUID()}\n`), await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'))]);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = stack.ctx.blobs.location(sha256);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, bytes);
    await fs.utimes(file, ago(2 * HOUR), ago(2 * HOUR));
    const stored = await client(stack.url, user.token).upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'old-bytes.pdb', content: bytes },
      {},
      { prefer: 'wait=30' },
    );
    expect(stored.status, JSON.stringify(stored.body)).toBe(201);
    expect(stored.body.structure.currentVersion.sha256).toBe(sha256);
    expect(await blobRow(sha256)).toBeDefined();
    const report = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
    expect(report.files.items.map((i) => i.path)).not.toContain(file);
    expect(await exists(file)).toBe(true);
    const download = await client(stack.url, user.token).raw(`/v1/structures/${stored.body.structure.id}/download`);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);
  });

  it('starts the grace period over for a blob that is recorded again', async () => {
    const sha256 = await orphanBlob(ago(3 * HOUR), ago(2 * HOUR));
    await stack.ctx.orm.em.fork().transactional(async (tx) => {
      await lockBlob(tx, sha256);
      await recordBlob(tx, { sha256, size: 2048, storedSize: 2048, mediaType: 'application/octet-stream' });
    });
    expect((await blobRow(sha256)).orphaned_at).toBeNull();
    const report = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
    expect(report.blobs.items.map((i) => i.sha256)).not.toContain(sha256);
    expect(await blobRow(sha256)).toBeDefined();
  });

  it('reports blob files without a row and removes them after the grace period', async () => {
    const plant = async (mtime: Date) => {
      const bytes = randomBytes(1000);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const file = stack.ctx.blobs.location(sha256);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, bytes);
      await fs.utimes(file, mtime, mtime);
      return file;
    };
    const oldFile = await plant(ago(2 * HOUR));
    const newFile = await plant(new Date());
    const stray = path.join(stack.ctx.config.blobDir, 'sha256', 'not-a-hash.txt');
    await fs.writeFile(stray, 'hello');

    const dry = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, { dryRun: true });
    expect(dry.files.orphans).toBe(2);
    expect(dry.files.items.map((i) => i.path)).toEqual([oldFile]);
    expect(await exists(oldFile)).toBe(true);

    const report = await runJob(stack.ctx, gcJob, { stamp: 'files' });
    expect(report.files).toMatchObject({ orphans: 2, orphanBytes: 2000, removed: 1, bytesFreed: 1000 });
    expect(report.files.strays).toContain(stray);
    expect(await exists(oldFile)).toBe(false);
    expect(await exists(newFile)).toBe(true);
    expect(await exists(stray)).toBe(true);
  });

  it('cleanup --dry-run reports without changing anything; the cleanup job then removes what crashes left', async () => {
    const em = stack.ctx.orm.em.fork();
    const old = ago(3 * HOUR);
    const age = async (target: string) => fs.utimes(target, old, old);
    // A staging entry of an upload that never finished streaming, and a fresh one (still streaming).
    const staging = () => stack.ctx.staging as LocalStaging;
    const staleUpload = randomUUID();
    await staging().write(staleUpload, Readable.from([randomBytes(500)]));
    await age(staging().file(staleUpload));
    await age(staging().dir(staleUpload));
    const streaming = randomUUID();
    await staging().write(streaming, Readable.from([randomBytes(100)]));
    // An old staged file of an upload still waiting for ingest (live: kept).
    const waiting = randomUUID();
    await staging().write(waiting, Readable.from([Buffer.from('ATOM')]));
    await age(staging().file(waiting));
    await age(staging().dir(waiting));
    await em.execute(
      `insert into uploads (id, owner_id, project_id, structure_id, creates_structure, state, filename, received_bytes, created_at, updated_at)
       values (?, ?, ?, ?, true, 'received', 'waiting.pdb', 4, now(), now())`,
      [waiting, user.id, projectId, randomUUID()],
    );
    // An upload stuck for hours, holding a reservation; a reservation whose upload never got a row.
    const stuck = randomUUID();
    await em.execute(
      `insert into uploads (id, owner_id, project_id, structure_id, creates_structure, state, filename, received_bytes, created_at, updated_at)
       values (?, ?, ?, ?, true, 'received', 'stuck.pdb', 10, ?, ?)`,
      [stuck, user.id, projectId, randomUUID(), old, old],
    );
    await em.execute('insert into quota_reservations (upload_id, owner_id, bytes, created_at, updated_at) values (?, ?, 10, ?, ?)', [stuck, user.id, old, old]);
    await em.execute('insert into quota_reservations (upload_id, owner_id, bytes, created_at, updated_at) values (?, ?, 777, ?, ?)', [
      staleUpload,
      user.id,
      old,
      old,
    ]);
    // A blob-store temp file and an engine scratch dir left by killed jobs.
    const temp = path.join(stack.ctx.config.blobDir, 'tmp', `${randomUUID()}.part`);
    await fs.mkdir(path.dirname(temp), { recursive: true });
    await fs.writeFile(temp, randomBytes(300));
    await age(temp);
    const scratch = path.join(stack.ctx.config.scratchDir, 'job-1');
    await fs.mkdir(scratch, { recursive: true });
    await fs.writeFile(path.join(scratch, 'out.cif'), randomBytes(200));
    await age(path.join(scratch, 'out.cif'));
    await age(scratch);

    const state = async () => ({
      staging: (await stack.ctx.staging.list()).sort(),
      temp: await exists(temp),
      scratch: await exists(scratch),
      stuck: (await em.fork().execute<{ state: string }[]>('select state from uploads where id = ?', [stuck]))[0].state,
      reservations: (await em.fork().execute<{ upload_id: string }[]>('select upload_id from quota_reservations where owner_id = ?', [user.id]))
        .map((r) => r.upload_id)
        .sort(),
    });
    const before = await state();
    expect(before).toMatchObject({ temp: true, scratch: true, stuck: 'received' });

    const config = stack.ctx.config;
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'cleanup', '--dry-run'], {
      env: {
        ...process.env,
        ...env,
        DATABASE_URL: config.databaseUrl,
        REDIS_URL: config.redisUrl,
        QUEUE_PREFIX: config.queuePrefix,
        DATA_DIR: config.dataDir,
        LOG_LEVEL: 'warn',
      },
      timeout: 60_000,
    });
    const dry = JSON.parse(stdout);
    expect(dry.dryRun).toBe(true);
    const step = (report: { steps: { name: string; removed: number; bytesFreed: number; items: { what: string }[] }[] }, name: string) =>
      report.steps.find((s) => s.name === name);
    expect(
      step(dry, 'stuck uploads')
        ?.items.map((i) => i.what)
        .join(),
    ).toContain(stuck);
    expect(
      step(dry, 'stale quota reservations')
        ?.items.map((i) => i.what)
        .join(),
    ).toContain(staleUpload);
    expect(step(dry, 'stale staging')).toMatchObject({ removed: 1, bytesFreed: 500 });
    expect(step(dry, 'blob store temp files')).toMatchObject({ removed: 1, bytesFreed: 300 });
    expect(step(dry, 'engine scratch directories')).toMatchObject({ removed: 1, bytesFreed: 200 });
    expect(dry.bytesFreed).toBeGreaterThanOrEqual(1000);
    expect(await state()).toEqual(before);

    const report = await runJob(stack.ctx, cleanupJob, { stamp: 'real' });
    expect(report.dryRun).toBe(false);
    expect(report.steps.every((s: { error?: string }) => !s.error)).toBe(true);
    const after = await state();
    expect(after.staging).toEqual([streaming, waiting].sort());
    expect(after).toMatchObject({ temp: false, scratch: false, stuck: 'failed', reservations: [] });
    const [failed] = await em.fork().execute<{ error: { code: string; message: string } }[]>('select error from uploads where id = ?', [stuck]);
    expect(failed.error).toMatchObject({ code: 'upload_stuck', message: expect.stringContaining('please upload it again') });
    // A second run finds nothing more to do.
    const again = await runJob(stack.ctx, cleanupJob, { stamp: 'again' });
    expect(again.steps.filter((s: { name: string }) => s.name !== 'stuck uploads').every((s: { removed: number }) => s.removed === 0)).toBe(true);
    await stack.ctx.staging.remove(streaming);
    await stack.ctx.staging.remove(waiting);
    await em.fork().execute(`update uploads set state = 'failed' where id = ?`, [waiting]);
  });
});
