import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/config/index.js';
import { failImportItem } from '../src/services/imports/finish.js';
import { reconcileAll } from '../src/services/maintenance/reconcile.js';
import { checkRedisGeneration } from '../src/services/maintenance/redisGeneration.js';
import { startWorkers } from '../src/workers/main.js';
import { client, type TestUser, userFactory } from './helpers/factories.js';
import { importFiles, waitForImport } from './helpers/imports.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { type Stack, startStack } from './helpers/stack.js';

/** Short periods, so recovery that takes "two reconcile periods" takes seconds here. */
const QUICK = {
  RECONCILE_EVERY_MS: '2000',
  RECONCILE_AFTER_MS: '2000',
  WATCHDOG_EVERY_MS: '1000',
  WORKER_LOCK_MS: '4000',
  WORKER_STALLED_INTERVAL_MS: '2000',
  INFRA_RETRY_BASE_DELAY_MS: '250',
  INFRA_RETRY_MAX_DELAY_MS: '2000',
};

async function distinctFiles(count: number, label: string) {
  const bases = await Promise.all(
    ['ngl_1crn.pdb', 'chemfiles_insertion-code.pdb', 'ngl_multi-models-example.pdb'].map((name) =>
      fs.readFile(path.join(import.meta.dirname, 'fixtures', name), 'latin1'),
    ),
  );
  return Array.from({ length: count }, (_, i) => ({
    name: `${label}/${String(i).padStart(4, '0')}.pdb`,
    content: Buffer.from(`REMARK 999 ${label} COPY ${i}\n${bases[i % bases.length]}`, 'latin1'),
  }));
}

/** Every item stored or rejected (none failed or open), each stored file one structure with one version. */
async function expectEveryItemEndedOnce(stack: { ctx: Stack['ctx'] }, projectId: string, done: any, total: number) {
  expect(done.state).toBe('completed');
  expect(done.total).toBe(total);
  expect(done.pending).toBe(0);
  const states = new Set(done.items.map((i: any) => i.state));
  for (const state of states) expect(['stored', 'rejected']).toContain(state);
  const stored = done.items.filter((i: any) => i.state === 'stored').length;
  const [counts] = await stack.ctx.orm.em.fork().execute<{ structures: string; versions: string }[]>(
    `select (select count(*) from structures where project_id = ?) as structures,
            (select count(*) from structure_versions v join structures s on s.id = v.structure_id where s.project_id = ?) as versions`,
    [projectId, projectId],
  );
  expect(counts).toEqual({ structures: String(stored), versions: String(stored) });
}

describe('Redis flushed in the middle of an import (a Redis of this test its own)', () => {
  let redis: TestRedis;
  let stack: Stack;

  beforeAll(async () => {
    redis = await startTestRedis();
    stack = await startStack({ env: QUICK, config: { redisUrl: redis.url } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await redis?.close();
  });

  it('finishes every accepted item with no process restarted: the watchdog re-registers the schedules and reconcile re-adds the flow', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'flushed' })).body.id;
    const total = 120;
    const accepted = await importFiles(api, projectId, await distinctFiles(total, 'flush'));
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const importId = accepted.body.import.id;
    await expect.poll(async () => (await api.get(`/v1/imports/${importId}?limit=1`)).body.succeeded, { timeout: 240_000, interval: 20 }).toBeGreaterThan(0);

    // Redis loses everything: jobs, flows, and the schedules.
    await redis.admin().flushall();
    expect(await stack.ctx.queues.cleanup.getJobScheduler('reconcile-uploads')).toBeUndefined();
    const flushedAt = Date.now();

    // The same processes carry on: the schedules come back, and every accepted item ends.
    await expect.poll(async () => stack.ctx.queues.cleanup.getJobScheduler('reconcile-uploads'), { timeout: 60_000, interval: 200 }).toBeDefined();
    const done = await waitForImport(api, importId, 400_000);
    console.log(`[outages] import of ${total} finished ${Date.now() - flushedAt} ms after FLUSHALL (reconcile period 2000 ms)`);
    await expectEveryItemEndedOnce(stack, projectId, done, total);
    expect(done.items.filter((i: any) => i.state === 'stored')).toHaveLength(total);
    const [run] = await stack.ctx.orm.em
      .fork()
      .execute<{ after: boolean }[]>(`select finished_at > to_timestamp(?::double precision / 1000) as after from maintenance_runs where name = 'reconcile'`, [
        flushedAt,
      ]);
    expect(run?.after).toBe(true);
  }, 600_000);
});

/**
 * Reconcile's own thresholds out of reach (an hour): only the watchdog's finding that Redis lost its
 * data (its generation mark gone) can bring the flushed import back, and it does so without waiting.
 */
const PATIENT_RECONCILE = {
  RECONCILE_EVERY_MS: '3600000',
  RECONCILE_AFTER_MS: '3600000',
  WATCHDOG_EVERY_MS: '500',
  WORKER_LOCK_MS: '4000',
  WORKER_STALLED_INTERVAL_MS: '2000',
};

describe('Redis flushed while its workers run, with reconcile waiting an hour for abandoned work (a Redis of this test its own)', () => {
  let redis: TestRedis;
  let stack: Stack;

  beforeAll(async () => {
    redis = await startTestRedis();
    stack = await startStack({ env: PATIENT_RECONCILE, config: { redisUrl: redis.url } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await redis?.close();
  });

  it('re-adds the lost jobs at once: every item ends once, after a recovery recorded since the flush', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'flushed, recovered at once' })).body.id;
    const total = 100;
    const accepted = await importFiles(api, projectId, await distinctFiles(total, 'generation'));
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const importId = accepted.body.import.id;
    await expect.poll(async () => (await api.get(`/v1/imports/${importId}?limit=1`)).body.succeeded, { timeout: 240_000, interval: 20 }).toBeGreaterThan(0);

    await redis.admin().flushall();
    const flushedAt = Date.now();
    const done = await waitForImport(api, importId, 400_000);
    await expectEveryItemEndedOnce(stack, projectId, done, total);
    expect(done.items.filter((i: any) => i.state === 'stored')).toHaveLength(total);
    // The recovery ran whole after the flush: a new mark, in Redis and remembered by Postgres.
    const prefix = stack.ctx.config.queuePrefix;
    const [row] = await stack.ctx.orm.em
      .fork()
      .execute<{ generation: string; after: boolean }[]>(
        'select generation, recorded_at > to_timestamp(?::double precision / 1000) as after from queue_generations where queue_prefix = ?',
        [flushedAt, prefix],
      );
    expect(row?.after).toBe(true);
    expect(await redis.admin().get(`${prefix}:molvault:generation`)).toBe(row?.generation);
  }, 600_000);

  it('tells a Redis that lost its data from a queue prefix never used, and an unchanged one', async () => {
    const ctx = () => ({ ...stack.ctx, em: stack.ctx.orm.em.fork() });
    // The workers' watchdog has seen this Redis: its mark is the one Postgres remembers.
    expect(await checkRedisGeneration(ctx(), 'test')).toEqual({ state: 'same' });
    const prefix = stack.ctx.config.queuePrefix;
    const mark = await redis.admin().get(`${prefix}:molvault:generation`);
    expect(mark).toBeTruthy();

    // A prefix Postgres never saw is new, not lost: its mark is made and remembered, and nothing reconciled.
    const fresh = { ...ctx(), config: { ...stack.ctx.config, queuePrefix: `${prefix}-fresh` } };
    expect(await checkRedisGeneration(fresh, 'test')).toEqual({ state: 'new' });
    expect(await checkRedisGeneration(fresh, 'test')).toEqual({ state: 'same' });

    // A Redis restored from another point holds a mark Postgres does not remember: lost as well.
    await redis.admin().set(`${prefix}:molvault:generation`, 'from-another-time');
    // The workers' watchdog looks every 500 ms and may find it first (this check then sees the new
    // mark, or waits while that recovery holds the lock): either way it is taken as lost, and a new
    // mark is made and remembered, checked below.
    const recovered = await checkRedisGeneration(ctx(), 'test');
    expect(['recovered', 'same', 'pending']).toContain(recovered.state);
    await expect.poll(async () => (await checkRedisGeneration(ctx(), 'test')).state, { timeout: 60_000, interval: 100 }).toBe('same');
    const now = await redis.admin().get(`${prefix}:molvault:generation`);
    expect(now).not.toBe('from-another-time');
    expect(now).not.toBe(mark);
    const [remembered] = await stack.ctx.orm.em
      .fork()
      .execute<{ generation: string }[]>('select generation from queue_generations where queue_prefix = ?', [prefix]);
    expect(remembered?.generation).toBe(now);
    expect(await checkRedisGeneration(ctx(), 'test')).toEqual({ state: 'same' });
  }, 120_000);
});

describe('import items an outage had marked failed', () => {
  let stack: Stack;
  let user: TestUser;

  beforeAll(async () => {
    stack = await startStack({ workers: false, env: QUICK });
    user = await userFactory(stack.ctx);
  });
  afterAll(() => stack?.stop());

  it('are picked up again by reconcile and stored, while a file that is at fault stays refused', async () => {
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'failed by an outage' })).body.id;
    const files = [...(await distinctFiles(6, 'reopen')), { name: 'reopen/broken.pdb', content: Buffer.from('this is not a structure\n') }];
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const importId = accepted.body.import.id;
    const em = stack.ctx.orm.em.fork();
    const items = await em.execute<{ id: string }[]>('select id from import_items where batch_id = ? order by position', [importId]);
    expect(items).toHaveLength(7);

    // What an outage left before molvault told a sick system from a bad file: three items failed
    // with the database's error, and the import closed as completed.
    const outage = 'Connection terminated unexpectedly';
    for (const { id } of items.slice(0, 3)) await failImportItem({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, importId, id, outage);
    await em.execute(`update import_batches set state = 'completed', finished_at = now() where id = ?`, [importId]);
    await em.execute(`delete from quota_reservations where upload_id = ?`, [importId]);
    const before = (await api.get(`/v1/imports/${importId}?limit=1`)).body;
    expect(before).toMatchObject({ state: 'completed', failed: 3 });

    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      await reconcileAll({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, 0);
      const done = await waitForImport(api, importId, 300_000);
      expect(done).toMatchObject({ state: 'completed', total: 7, succeeded: 6, failed: 1 });
      const byName = new Map(done.items.map((i: any) => [i.name, i]));
      expect((byName.get('reopen/broken.pdb') as any).state).toBe('rejected');
      for (const item of done.items) expect(['stored', 'rejected']).toContain(item.state);
      await expectEveryItemEndedOnce(stack, projectId, done, 7);
      const [held] = await em.execute<{ n: string }[]>('select count(*) as n from quota_reservations where owner_id = ?', [user.id]);
      expect(Number(held.n)).toBe(0);
    } finally {
      await workers.close();
    }
  }, 600_000);
});
