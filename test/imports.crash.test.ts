import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/config/index.js';
import { ImportBatch } from '../src/entities/ImportBatch.js';
import { expandArchive } from '../src/services/imports/expand.js';
import { reconcileAll } from '../src/services/maintenance/reconcile.js';
import { startWorkers } from '../src/workers/main.js';
import { client, userFactory } from './helpers/factories.js';
import { buildTar, importArchive, importFiles, waitForImport } from './helpers/imports.js';
import { type Stack, startStack } from './helpers/stack.js';

/** Short locks, so the jobs of a killed worker are handed over within seconds. */
const FAST = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' };

describe('a worker process killed in the middle of a 200-file import', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];

  /** A separate `molvault worker` process, as in production, on this test's database, Redis prefix and data dir. */
  function startWorkerProcess(): ChildProcess {
    const config = stack.ctx.config;
    const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../bin/molvault.js'), 'worker'], {
      env: {
        ...process.env,
        ...FAST,
        DATABASE_URL: config.databaseUrl,
        REDIS_URL: config.redisUrl,
        QUEUE_PREFIX: config.queuePrefix,
        DATA_DIR: config.dataDir,
        PARSE_THREADS: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    children.push(child);
    return child;
  }

  async function stop(child: ChildProcess, signal: NodeJS.Signals) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  beforeAll(async () => {
    stack = await startStack({ workers: false, env: FAST });
  });
  afterAll(async () => {
    for (const child of children) await stop(child, 'SIGKILL');
    await stack?.stop();
  });

  it('completes after a new worker starts, every file stored exactly once', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'crash import' })).body.id;
    const bases = await Promise.all(
      ['ngl_1crn.pdb', 'chemfiles_insertion-code.pdb', 'ngl_multi-models-example.pdb'].map((name) =>
        fs.readFile(path.join(import.meta.dirname, 'fixtures', name), 'latin1'),
      ),
    );
    // 200 distinct files: the fixtures, each copy with a REMARK of its own.
    const files = Array.from({ length: 200 }, (_, i) => ({
      name: `run/${String(i).padStart(3, '0')}.pdb`,
      content: Buffer.from(`REMARK 999 COPY ${i}\n${bases[i % bases.length]}`, 'latin1'),
    }));
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const importId = accepted.body.import.id;

    const first = startWorkerProcess();
    // Kill it once part of the batch is done, while files are in the middle of the pipeline.
    await expect
      .poll(
        async () => {
          const { body } = await api.get(`/v1/imports/${importId}?state=processing&limit=1`);
          return body.succeeded >= 15 && body.items.length > 0;
        },
        { timeout: 120_000, interval: 10 },
      )
      .toBe(true);
    await stop(first, 'SIGKILL');
    const atKill = (await api.get(`/v1/imports/${importId}?limit=1`)).body;
    expect(atKill.state).toBe('running');
    expect(atKill.pending).toBeGreaterThan(0);

    const second = startWorkerProcess();
    const done = await waitForImport(api, importId, 300_000);
    await stop(second, 'SIGTERM');
    expect(done).toMatchObject({ state: 'completed', total: 200, succeeded: 200, failed: 0, skipped: 0, pending: 0 });

    // Exactly once: 200 structures with one version each, one per file, no upload stored twice.
    const em = stack.ctx.orm.em.fork();
    const [counts] = await em.execute<{ structures: string; versions: string; uploads: string }[]>(
      `select (select count(*) from structures where project_id = ?) as structures,
              (select count(*) from structure_versions v join structures s on s.id = v.structure_id where s.project_id = ?) as versions,
              (select count(*) from uploads where project_id = ? and state = 'stored') as uploads`,
      [projectId, projectId, projectId],
    );
    expect(counts).toEqual({ structures: '200', versions: '200', uploads: '200' });
    expect(new Set(done.items.map((i: any) => i.structureId)).size).toBe(200);
    expect(new Set(done.items.map((i: any) => i.sha256)).size).toBe(200);
    const [held] = await em.execute<{ n: string }[]>('select count(*) as n from quota_reservations where owner_id = ?', [user.id]);
    expect(Number(held.n)).toBe(0);
    expect(await stack.ctx.staging.list()).toEqual([]);
  }, 600_000);
});

describe('imports after Redis or a worker lost their work', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: false });
  });
  afterAll(() => stack?.stop());

  it('re-adds the flows from Postgres and finishes every import', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'redis lost' })).body.id;
    const base = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
    const file = (tag: string) => ({ name: `${tag}.pdb`, content: Buffer.from(`REMARK 999 ${tag}\n${base}`, 'latin1') });
    const files = await importFiles(api, projectId, [file('f1'), file('f2'), file('f3')]);
    const archive = await importArchive(api, projectId, await buildTar([file('a1'), file('a2')]));
    expect([files.status, archive.status]).toEqual([202, 202]);

    // Redis restarts without persistence: every key of this queue prefix is gone; Postgres still knows both imports.
    const keys = await stack.ctx.redis.keys(`${stack.ctx.config.queuePrefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await stack.ctx.redis.del(...keys);
    expect((await api.get(`/v1/imports/${files.body.import.id}`)).body).toMatchObject({ state: 'running', pending: 3 });
    expect((await api.get(`/v1/imports/${archive.body.import.id}`)).body).toMatchObject({ state: 'expanding' });
    expect(await stack.ctx.queues.ingest.getJob(`batch-${files.body.import.id}`)).toBeUndefined();

    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const reports = (await reconcileAll({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, 0)) as Record<string, any>;
      // Only this test's imports: other test files share the database (one leaves an import waiting for workers on purpose).
      const ours = [`batch-${archive.body.import.id}`, `batch-${files.body.import.id}`].sort();
      const mine = (report: Record<string, any>) => report.imports.reenqueued.map((r: any) => r.job).filter((job: string) => ours.includes(job));
      expect(mine(reports).sort()).toEqual(ours);
      expect(await waitForImport(api, files.body.import.id)).toMatchObject({ state: 'completed', total: 3, succeeded: 3 });
      expect(await waitForImport(api, archive.body.import.id)).toMatchObject({ state: 'completed', total: 2, succeeded: 2 });
      // Nothing left to repair, and a second pass adds nothing.
      const again = (await reconcileAll({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, 0)) as Record<string, any>;
      expect(mine(again)).toEqual([]);
    } finally {
      await workers.close();
    }
    const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from structures where project_id = ?', [projectId]);
    expect(Number(row.n)).toBe(5);
  }, 120_000);

  it('unpacks an archive again after a crash mid-expansion, recording each entry once', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'expansion crash' })).body.id;
    const base = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
    const entries = Array.from({ length: 5 }, (_, i) => ({ name: `e${i}.pdb`, content: Buffer.from(`REMARK 999 expansion ${i}\n${base}`, 'latin1') }));
    const accepted = await importArchive(api, projectId, await buildTar(entries));
    expect(accepted.status).toBe(202);
    const batchId = accepted.body.import.id;
    // A worker that unpacked everything into staging and died before recording the items.
    const em = stack.ctx.orm.em.fork();
    const batch = await em.findOneOrFail(ImportBatch, { id: batchId });
    const partial = await expandArchive(stack.ctx, em, batch);
    expect(partial.drafts).toHaveLength(5);
    expect((await stack.ctx.staging.list()).length).toBe(6); // the archive and its five entries

    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const done = await waitForImport(api, batchId);
      expect(done).toMatchObject({ state: 'completed', total: 5, succeeded: 5 });
      expect(done.items.map((i: any) => i.name)).toEqual(entries.map((e) => e.name));
    } finally {
      await workers.close();
    }
    expect(await stack.ctx.staging.list()).toEqual([]);
    const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from structures where project_id = ?', [projectId]);
    expect(Number(row.n)).toBe(5);
  }, 120_000);
});
