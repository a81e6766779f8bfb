import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/config/index.js';
import { isStorageFull, StorageFullError } from '../src/storage/freeSpace.js';
import { startWorkers } from '../src/workers/main.js';
import { client, userFactory, waitForUpload } from './helpers/factories.js';
import { importFiles, waitForImport } from './helpers/imports.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const MOUNT_BYTES = 24 * 1024 * 1024;
const FLOOR_BYTES = 4 * 1024 * 1024;

/** Mounts a small tmpfs of the test's own, or says why it cannot (not root, no CAP_SYS_ADMIN, no mount). */
async function mountTmpfs(): Promise<{ dir: string } | { reason: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-full-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${MOUNT_BYTES}`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (error) {
    await fs.rmdir(dir).catch(() => {});
    return { reason: String((error as { stderr?: Buffer }).stderr ?? error).trim() || 'mount failed' };
  }
}

const mounted = await mountTmpfs();
const skipReason = 'reason' in mounted ? ` (skipped: this machine cannot mount a tmpfs here: ${mounted.reason})` : '';

/** Fills the filesystem of `dir` with one file until `leaveBytes` or fewer are free (0: until ENOSPC). */
async function fill(dir: string, leaveBytes: number): Promise<string> {
  const filler = path.join(dir, `filler-${randomBytes(4).toString('hex')}`);
  const handle = await fs.open(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) {
      const { bavail, bsize } = await fs.statfs(dir);
      const free = bavail * bsize;
      if (free <= leaveBytes) break;
      await handle.write(leaveBytes > 0 ? chunk.subarray(0, Math.min(chunk.length, free - leaveBytes)) : chunk);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
  return filler;
}

async function uploadRows(stack: Stack, ownerId: string) {
  const rows = await stack.ctx.orm.em
    .fork()
    .execute<{ uploads: string; batches: string }[]>(
      'select (select count(*) from uploads where owner_id = ?) as uploads, (select count(*) from import_batches where owner_id = ?) as batches',
      [ownerId, ownerId],
    );
  return { uploads: Number(rows[0].uploads), batches: Number(rows[0].batches) };
}

describe.skipIf(skipReason !== '' /* skipped when this machine cannot mount a tmpfs (not root, no CAP_SYS_ADMIN); the title says why */)(
  `a full disk under DATA_DIR (a tmpfs the test mounts)${skipReason}`,
  () => {
    const dir = 'dir' in mounted ? mounted.dir : '';
    let stack: Stack;

    beforeAll(async () => {
      stack = await startStack({
        workers: false,
        env: { DISK_FREE_MIN_BYTES: String(FLOOR_BYTES), STORAGE_FULL_RETRY_MS: '200' },
        config: { dataDir: dir, stagingDir: path.join(dir, 'staging'), blobDir: path.join(dir, 'blobs') },
      });
    }, 60_000);

    afterAll(async () => {
      await stack?.stop();
      if (dir) {
        execFileSync('umount', [dir]);
        await fs.rmdir(dir);
      }
    });

    it('recognises a full disk however it is reported (ENOSPC, EDQUOT, Postgres disk_full, a message from a thread)', () => {
      expect(isStorageFull(Object.assign(new Error('write failed'), { code: 'ENOSPC' }))).toBe(true);
      expect(isStorageFull(new Error('ENOSPC: no space left on device, write'))).toBe(true);
      expect(isStorageFull(Object.assign(new Error('could not extend file'), { code: '53100' }))).toBe(true);
      expect(isStorageFull(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'EDQUOT' }) }))).toBe(true);
      expect(isStorageFull(new StorageFullError('full'))).toBe(true);
      expect(isStorageFull(Object.assign(new Error('gone'), { code: 'ENOENT' }))).toBe(false);
    });

    it('refuses uploads and imports (files, an archive, PDB ids) at once with 507 storage_full below the floor, leaving nothing behind', async () => {
      const user = await userFactory(stack.ctx);
      const api = client(stack.url, user.token);
      const projectId = (await api.post('/v1/projects', { name: 'full disk' })).body.id;
      const crambin = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
      const filler = await fill(dir, FLOOR_BYTES / 2);
      try {
        const upload = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: crambin });
        expect(upload.status).toBe(507);
        expect(upload.body.error.code).toBe('storage_full');
        expect(upload.body.error.message).toMatch(/storage is full.*nothing was stored/);
        expect(upload.headers.get('retry-after')).toBe('60');

        const files = await importFiles(api, projectId, [{ name: 'a.pdb', content: crambin }]);
        expect(files.status).toBe(507);
        expect(files.body.error.code).toBe('storage_full');
        const archive = await api.raw(`/v1/projects/${projectId}/imports`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: gzipSync(crambin),
        });
        expect(archive.status).toBe(507);
        const pdbIds = await api.post(`/v1/projects/${projectId}/imports`, { pdbIds: ['1CRN'] });
        expect(pdbIds.status).toBe(507);
        expect(pdbIds.body.error.code).toBe('storage_full');

        expect(await uploadRows(stack, user.id)).toEqual({ uploads: 0, batches: 0 });
        expect(await leftovers(stack.ctx, user.id)).toMatchObject({ structures: 0, versions: 0, blobFiles: 0, tempFiles: 0, stagingEntries: 0 });
      } finally {
        await fs.rm(filler);
      }
    });

    it('answers 507 storage_full, not 500, when the disk fills while a body streams in, and keeps no staging file', async () => {
      const user = await userFactory(stack.ctx);
      const api = client(stack.url, user.token);
      const projectId = (await api.post('/v1/projects', { name: 'fills mid-stream' })).body.id;
      // Above the floor, so the request is taken in; then more bytes than are free, with no length declared.
      const filler = await fill(dir, FLOOR_BYTES + 1024 * 1024);
      try {
        const crambin = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let sent = 0; sent < FLOOR_BYTES * 2; sent += crambin.length) controller.enqueue(new Uint8Array(crambin));
            controller.close();
          },
        });
        const response = await api.raw(`/v1/projects/${projectId}/structures?name=big.pdb`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body,
          duplex: 'half',
        } as RequestInit);
        expect(response.status).toBe(507);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('storage_full');
        expect(await uploadRows(stack, user.id)).toMatchObject({ uploads: 0 });
        expect(await leftovers(stack.ctx, user.id)).toMatchObject({ stagingEntries: 0, tempFiles: 0 });
      } finally {
        await fs.rm(filler);
      }
    });

    it('finishes uploads and imports accepted before the disk filled once space is freed, failing none meanwhile', async () => {
      const user = await userFactory(stack.ctx);
      const api = client(stack.url, user.token);
      const projectId = (await api.post('/v1/projects', { name: 'accepted, then full' })).body.id;
      // Compressed, so ingest must write the unpacked content: that is what meets the full disk.
      const sources = ['ngl_1crn.pdb', 'chemfiles_aspirin.sdf', 'chemfiles_imatinib.mol2', 'ngl_1CRN.cif'];
      const contents = await Promise.all(sources.map((name) => fs.readFile(path.join(FIXTURES, name))));
      const uploadIds: string[] = [];
      for (const [i, content] of contents.entries()) {
        const answer = await api.upload(`/v1/projects/${projectId}/structures`, { name: `${sources[i]}.gz`, content: gzipSync(content) });
        expect(answer.status).toBe(202);
        uploadIds.push(answer.body.upload.id);
      }
      const imported = await importFiles(
        api,
        projectId,
        contents.map((content, i) => ({ name: `import-${i}-${sources[i]}.gz`, content: gzipSync(Buffer.concat([content, Buffer.from(`\n`)])) })),
      );
      expect(imported.status).toBe(202);

      const filler = await fill(dir, 0);
      const events = new QueueEvents('ingest', { connection: { url: stack.ctx.config.redisUrl }, prefix: stack.ctx.config.queuePrefix });
      await events.waitUntilReady();
      const delays = new Map<string, number>();
      events.on('delayed', ({ jobId }) => {
        delays.set(jobId, (delays.get(jobId) ?? 0) + 1);
      });
      // More waits for each upload's ingest job than BullMQ's 5 attempts allow: one that counted them would have failed its upload.
      const waitedEnough = () => uploadIds.every((id) => (delays.get(`ingest-${id}`) ?? 0) > 6);
      const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
      try {
        const states = async () =>
          (await stack.ctx.orm.em.fork().execute<{ state: string }[]>('select state from uploads where owner_id = ?', [user.id])).map((row) => row.state);
        for (let polls = 0; !waitedEnough() && polls < 3000; polls++) {
          expect(await states()).not.toContain('failed');
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(Object.fromEntries(delays), 'every upload waited for space more than 6 times').toSatisfy(waitedEnough);
        expect(await states()).not.toContain('failed');
        expect(await states()).not.toContain('stored');

        await fs.rm(filler);
        for (const uploadId of uploadIds) expect((await waitForUpload(api, uploadId, 60_000)).state).toBe('stored');
        const batch = await waitForImport(api, imported.body.import.id, 60_000);
        expect(batch.items.map((item: { state: string }) => item.state)).toEqual(contents.map(() => 'stored'));
        expect(await states()).toEqual(Array(uploadIds.length + contents.length).fill('stored'));
      } finally {
        await events.close();
        await workers.close();
        await fs.rm(filler, { force: true });
      }
    }, 120_000);
  },
);
