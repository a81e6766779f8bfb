import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/config/index.js';
import { reconcileJob } from '../src/queue/jobs.js';
import { reconcileUploads } from '../src/services/maintenance/reconcile.js';
import { startWorkers } from '../src/workers/main.js';
import { type Client, client, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { runJob } from './helpers/jobs.js';
import { type Stack, startStack } from './helpers/stack.js';

/** An accepted upload is never lost: not when Redis forgets its jobs, not when a worker stops. */
describe('recovery', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack({ workers: false });
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'survivors' })).body.id;
  });
  afterAll(() => stack?.stop());

  it('finishes every accepted upload after Redis lost all its jobs', async () => {
    const files = ['ngl_1crn.pdb', 'ngl_1CRN.cif', 'ngl_1CRN.cif.gz', 'chemfiles_insertion-code.pdb', 'ngl_multi-models-example.pdb'];
    const accepted: string[] = [];
    for (const name of files) {
      const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
      const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content: bytes });
      expect(response.status).toBe(202);
      accepted.push(response.body.upload.id);
    }
    // Redis restarts without persistence: every key of this queue prefix is gone.
    const keys = await stack.ctx.redis.keys(`${stack.ctx.config.queuePrefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await stack.ctx.redis.del(...keys);
    expect(await stack.ctx.queues.ingest.getJobCounts('waiting')).toEqual({ waiting: 0 });
    // Postgres still knows every upload.
    for (const id of accepted) expect((await api.get(`/v1/uploads/${id}`)).body.state).toBe('received');

    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      // The reconcile job itself, as the schedule runs it, on the cleanup queue the workers just re-created.
      const result = await runJob(stack.ctx, reconcileJob, { olderThanMs: 0, stamp: 'after-flush' });
      expect(result.uploads.reenqueued).toBeGreaterThanOrEqual(accepted.length);
      for (const id of accepted) expect((await waitForUpload(api, id)).state).toBe('stored');
      const again = await reconcileUploads({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, 0);
      expect(again.reenqueued.filter((r) => accepted.includes(r.subject))).toEqual([]);
    } finally {
      await workers.close();
    }
  });

  it('lets a worker finish its active jobs on shutdown, and another worker pick up the rest', async () => {
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const content = Buffer.from(`${bytes.toString('latin1')}REMARK 999 COPY ${i}\n`, 'latin1');
      ids.push((await api.upload(`/v1/projects/${projectId}/structures`, { name: `copy-${i}.pdb`, content })).body.upload.id);
    }
    const first = await startWorkers(stack.ctx, QUEUE_NAMES);
    // Generous: the parse pool's threads take seconds to start on a busy machine.
    await expect.poll(async () => (await api.get(`/v1/uploads/${ids[0]}`)).body.state, { timeout: 30_000, interval: 10 }).not.toBe('received');
    await first.close(); // graceful: waits for active jobs
    const afterClose = await Promise.all(ids.map(async (id) => (await api.get(`/v1/uploads/${id}`)).body.state));
    expect(afterClose).not.toContain('failed');
    const second = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      for (const id of ids) expect((await waitForUpload(api, id)).state).toBe('stored');
      const versions = await stack.ctx.orm.em
        .fork()
        .execute<{ n: string }[]>(`select count(*) as n from structure_versions where upload in (select jsonb_array_elements_text(?::jsonb)::uuid)`, [
          JSON.stringify(ids),
        ]);
      expect(Number(versions[0].n)).toBe(ids.length);
    } finally {
      await second.close();
    }
  }, 120_000); // a first parse thread can take many seconds to start on a loaded machine
});

describe('a worker process killed in the middle of a job', () => {
  let stack: Stack;
  // The upload is parsed by the validate job this test kills, not by the API as it arrives.
  const fast = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000', PARSE_ON_RECEIPT: 'false' };

  beforeAll(async () => {
    stack = await startStack({ workers: false, env: fast });
  });
  afterAll(() => stack?.stop());

  it('loses nothing: another worker finishes the upload, once', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'crash site' })).body.id;
    // A structure big enough that reading it takes a while: 300,000 atoms (~24 MB).
    const line = (i: number) =>
      `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA A${String((i % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`;
    const big = Array.from({ length: 300_000 }, (_, i) => line(i)).join('');
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'big.pdb', content: big });
    expect(accepted.status).toBe(202);
    const uploadId = accepted.body.upload.id;

    // A separate `molvault worker` process, as in production, sharing this test's database, Redis prefix and data dir.
    const config = stack.ctx.config;
    const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../bin/molvault.js'), 'worker'], {
      env: {
        ...process.env,
        ...fast,
        DATABASE_URL: config.databaseUrl,
        REDIS_URL: config.redisUrl,
        QUEUE_PREFIX: config.queuePrefix,
        DATA_DIR: config.dataDir,
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    try {
      // Kill it while the validate job (parsing) is running.
      // Generous: a worker process takes long to start, and the parse to begin, on a loaded machine.
      await expect.poll(async () => (await stack.ctx.queues.validate.getJobCounts('active')).active, { timeout: 150_000, interval: 20 }).toBe(1);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      expect((await api.get(`/v1/uploads/${uploadId}`)).body.state).toBe('processing');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }

    const rescuer = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const final = await waitForUpload(api, uploadId, 120_000);
      expect(final).toMatchObject({ state: 'stored', version: 1 });
      const structure = (await api.get(`/v1/structures/${final.structureId}`)).body;
      expect(structure.currentVersion.summary.atoms).toBe(300_000);
      const versions = await api.get(`/v1/structures/${final.structureId}/versions`);
      expect(versions.body.items).toHaveLength(1);
    } finally {
      await rescuer.close();
    }
  }, 300_000);
});
