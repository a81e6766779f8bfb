import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, restoreBackup } from '../src/backup/service.js';
import { connectOrm } from '../src/db/orm.js';
import { createLogger } from '../src/lib/logger.js';
import { dropDatabase, ensureDatabase } from '../src/runtime/postgres.js';
import { LocalBlobStore } from '../src/storage/localBlobStore.js';
import { S3BlobStore } from '../src/storage/s3BlobStore.js';
import { ensureBucket } from '../src/storage/s3Client.js';
import { S3Objects } from '../src/storage/s3Objects.js';
import { assertBlobStoreAgrees } from '../src/storage/switch.js';
import { ownDatabase } from './helpers/database.js';
import { client, storedStructure, userFactory } from './helpers/factories.js';
import { S3_TESTS_OFF, type S3Server, startS3Server } from './helpers/s3.js';
import { type Stack, startStack } from './helpers/stack.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');
const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const log = createLogger('silent');

describe.skipIf(S3_TESTS_OFF /* skipped when S3_TESTS=off */)(`backups and blobs migrate on S3 (Ceph RGW; skipped only when S3_TESTS=off)`, () => {
  let server: S3Server;
  let database: { url: string; drop(): Promise<void> };
  let stack: Stack | undefined;
  let work: string;
  let objects: S3Objects;
  let bucket: S3BlobStore;

  /** Every blob row with whether the given store holds bytes that hash to its name. */
  async function blobsVerifiedIn(store: { verify(sha256: string): Promise<boolean> }) {
    const orm = await connectOrm(database.url);
    try {
      const rows = await orm.em.fork().execute<{ sha256: string }[]>('select sha256 from blobs order by sha256');
      return Object.fromEntries(await Promise.all(rows.map(async (r) => [r.sha256, await store.verify(r.sha256)] as const)));
    } finally {
      await orm.close();
    }
  }
  async function wipeBucket() {
    for await (const blob of bucket.list()) await bucket.delete(blob.sha256);
  }

  beforeAll(async () => {
    server = await startS3Server();
    database = await ownDatabase('s3backup');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-s3backup-'));
    objects = new S3Objects(server.settings);
    await ensureBucket(objects.client, server.settings.bucket);
    bucket = new S3BlobStore(objects, work);
    stack = await startStack({ config: { databaseUrl: database.url }, env: { ...server.env, BACKUP_DIR: path.join(work, 'backups') } });
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'backed up' })).body.id;
    await storedStructure(api, projectId, '1crn.pdb', await fixture('ngl_1crn.pdb'));
    await storedStructure(api, projectId, 'aspirin.sdf', await fixture('chemfiles_aspirin.sdf'));
    await storedStructure(api, projectId, '1crn.cif', await fixture('ngl_1CRN.cif'));
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
    objects?.close();
    await database?.drop();
    await server?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  }, 300_000);

  it('backup → wipe the bucket and the database → restore: every blob is back with its sha256', async () => {
    const config = (stack as Stack).ctx.config;
    const backup = await createBackup({ config, databaseUrl: database.url, log }, { kind: 'manual' });
    expect(backup.blobCount).toBe(3);
    const before = await blobsVerifiedIn(bucket);
    expect(Object.values(before)).toEqual([true, true, true]);
    await stack?.stop();
    stack = undefined;

    await wipeBucket();
    expect(await blobsVerifiedIn(bucket)).toEqual(Object.fromEntries(Object.keys(before).map((k) => [k, false])));
    await dropDatabase(database.url);
    await ensureDatabase(database.url);

    const restored = await restoreBackup({ config, databaseUrl: database.url, log }, backup.id);
    expect(restored).toMatchObject({ blobsRestored: 3, missingBlobs: [] });
    expect(await blobsVerifiedIn(bucket)).toEqual(before);
  }, 300_000);

  it('blobs migrate: S3 → local → S3, every blob verified each way; processes with the other BLOB_STORE refuse to start', async () => {
    const dataDir = path.join(work, 'data');
    const env = { ...process.env, ...server.env, DATABASE_URL: database.url, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const molvault = async (args: string[], extra: Record<string, string> = {}) => {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...env, ...extra }, timeout: 180_000 });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const local = new LocalBlobStore(path.join(dataDir, 'blobs'));

    const toLocal = await molvault(['blobs', 'migrate', '--to', 'local'], { BLOB_STORE: 'local' });
    expect(toLocal.code, toLocal.stderr).toBe(0);
    expect(JSON.parse(toLocal.stdout)).toMatchObject({ from: 's3', to: 'local', blobs: 3, copied: 3, verified: 3, missing: [], failed: [], switched: true });
    expect(Object.values(await blobsVerifiedIn(local))).toEqual([true, true, true]);
    const execute = async (sql: string, params?: unknown[]) => {
      const orm = await connectOrm(database.url);
      try {
        return await orm.em.fork().execute(sql, params);
      } finally {
        await orm.close();
      }
    };
    await expect(assertBlobStoreAgrees(execute, { blobStore: 's3' })).rejects.toThrow(/moved to the local store .* BLOB_STORE=s3/);
    await assertBlobStoreAgrees(execute, { blobStore: 'local' });

    // Back to an emptied bucket, interrupted once: one blob is there already when it runs (resumed).
    await wipeBucket();
    const [first] = Object.keys(await blobsVerifiedIn(local));
    const { Readable } = await import('node:stream');
    const bytes = await fs.readFile(local.pathOf(first as string));
    await bucket.put(Readable.from([bytes]), { sha256: first as string, size: bytes.length });
    const toS3 = await molvault(['blobs', 'migrate', '--to', 's3']);
    expect(toS3.code, toS3.stderr).toBe(0);
    expect(JSON.parse(toS3.stdout)).toMatchObject({ from: 'local', to: 's3', blobs: 3, copied: 2, alreadyThere: 1, verified: 3, switched: true });
    expect(Object.values(await blobsVerifiedIn(bucket))).toEqual([true, true, true]);
    await assertBlobStoreAgrees(execute, { blobStore: 's3' });

    // A blob missing from the source: nothing is switched, and it says so.
    await wipeBucket();
    await fs.rm(local.pathOf(first as string));
    const incomplete = await molvault(['blobs', 'migrate', '--to', 's3']);
    expect(incomplete.code).toBe(1);
    expect(JSON.parse(incomplete.stdout)).toMatchObject({ missing: [first], switched: false });
    expect(incomplete.stderr).toMatch(/not switched to s3: 1 blob\(s\) missing/);
  }, 300_000);
});
