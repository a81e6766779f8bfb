import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../src/services/maintenance/reconcile.js';
import { REQUEST_WAITED_FOR_MS, requestsReconciler } from '../src/services/maintenance/workRequests.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { type Stack, startStack } from './helpers/stack.js';

/** Short periods, so "reconcile re-adds it" takes seconds here. */
const QUICK = {
  RECONCILE_EVERY_MS: '2000',
  RECONCILE_AFTER_MS: '2000',
  WATCHDOG_EVERY_MS: '1000',
  INFRA_RETRY_BASE_DELAY_MS: '250',
  INFRA_RETRY_MAX_DELAY_MS: '2000',
};

/**
 * A conversion, a diff and an export asked for, then Redis flushed before any of them ran (their
 * queues were paused, so none could finish first). The same processes carry on: each finishes once,
 * found again through Postgres, by the client following its job or by reconcile alone.
 */
describe('conversions, diffs and exports a client waits for, when Redis loses their jobs (a Redis of this test its own)', () => {
  let redis: TestRedis;
  let stack: Stack;
  let api: Client;

  beforeAll(async () => {
    redis = await startTestRedis();
    stack = await startStack({ env: QUICK, config: { redisUrl: redis.url } });
    const user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
    await redis?.close();
  }, 120_000);

  const rows = <T>(sql: string, params: unknown[] = []) => stack.ctx.orm.em.fork().execute<T[]>(sql, params);

  it('finishes each once after FLUSHALL, with no process restarted', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'waited for' })).body.id;
    const crambin = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
    const first = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'crambin.pdb', content: crambin }, {}, { prefer: 'wait=60' });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const structureId = first.body.structure.id;
    const moved = crambin.replace(/^(ATOM {2}.{24})(.{8})/m, (_, head, x) => `${head}${(Number(x) + 1.5).toFixed(3).padStart(8)}`);
    const second = await api.upload(`/v1/structures/${structureId}/versions`, { name: 'crambin.pdb', content: moved }, {}, { prefer: 'wait=60' });
    expect(second.status, JSON.stringify(second.body)).toBe(201);

    // Nothing of these may run before Redis forgets it.
    const { queues } = stack.ctx;
    await Promise.all([queues.convert.pause(), queues.diff.pause(), queues.export.pause()]);

    const conversion = await api.get(`/v1/structures/${structureId}/download?format=cif`);
    expect(conversion.status, JSON.stringify(conversion.body)).toBe(202);
    const convertJobId = conversion.body.job.id;
    expect(conversion.headers.get('location')).toBe(`/v1/jobs/${convertJobId}`);
    const diff = await api.get(`/v1/structures/${structureId}/diff`);
    expect(diff.status, JSON.stringify(diff.body)).toBe(202);
    const diffJobId = diff.body.job.id;
    const exported = await api.post('/v1/exports', { structureIds: [structureId], format: 'cif', versions: 'all' });
    expect(exported.status, JSON.stringify(exported.body)).toBe(202);
    const exportId = exported.body.export.id;
    expect(await queues.convert.getJob(convertJobId)).toBeDefined();
    expect(await queues.diff.getJob(diffJobId)).toBeDefined();

    // Postgres holds what the clients wait for, before Redis is lost.
    const requested = await rows<{ job_id: string; kind: string }>('select job_id, kind from work_requests where job_id in (?, ?) order by kind', [
      convertJobId,
      diffJobId,
    ]);
    expect(requested).toEqual([
      { job_id: convertJobId, kind: 'convert' },
      { job_id: diffJobId, kind: 'diff' },
    ]);

    await redis.admin().flushall();
    expect(await queues.convert.getJob(convertJobId)).toBeUndefined();
    expect(await queues.diff.getJob(diffJobId)).toBeUndefined();

    // The conversion's client follows its Location: the job is there again (not 404), and ends.
    const followed = await api.get(`/v1/jobs/${convertJobId}`);
    expect(followed.status, JSON.stringify(followed.body)).toBe(200);
    await expect.poll(async () => (await api.get(`/v1/jobs/${convertJobId}`)).body.state, { timeout: 240_000, interval: 250 }).toBe('completed');
    const converted = await api.raw(`/v1/structures/${structureId}/download?format=cif`);
    expect(converted.status).toBe(200);
    expect(await converted.text()).toMatch(/^data_/);

    // Nobody asks about the diff: reconcile alone adds its job back, and it is computed.
    const blobs = await rows<{ blob: string }>('select blob_sha256 as blob from structure_versions where structure_id = ? order by number', [structureId]);
    const diffs = () =>
      rows<{ n: number }>('select count(*)::int as n from version_diffs where from_blob_sha256 = ? and to_blob_sha256 = ?', [blobs[0].blob, blobs[1].blob]);
    await expect.poll(async () => (await diffs())[0].n, { timeout: 240_000, interval: 500 }).toBe(1);
    const answered = await api.get(`/v1/structures/${structureId}/diff`);
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    expect(answered.body.structural.atoms.moved.count).toBe(1);

    // The export (a row in Postgres) is re-added by reconcile too, and its conversions with it.
    await expect.poll(async () => (await api.get(`/v1/exports/${exportId}`)).body.state, { timeout: 300_000, interval: 500 }).toBe('completed');

    // Each once: one derivative per converted blob, one cached diff, one archive; nothing left waiting.
    const [derivations] = await rows<{ n: number; distinct: number }>(
      `select count(*)::int as n, count(distinct (source_blob_sha256, format))::int as distinct from derivations d
        where d.format = 'cif' and d.source_blob_sha256 in (select blob_sha256 from structure_versions where structure_id = ?)`,
      [structureId],
    );
    expect(derivations).toEqual({ n: 2, distinct: 2 });
    await expect
      .poll(async () => (await rows<{ n: number }>('select count(*)::int as n from work_requests where job_id in (?, ?)', [convertJobId, diffJobId]))[0].n, {
        timeout: 60_000,
        interval: 500,
      })
      .toBe(0);
  }, 900_000);

  it('forgets a request no client asked about for longer than it is waited for, without running it', async () => {
    const sha = (c: string) => c.repeat(64);
    const data = {
      structureId: '00000000-0000-4000-8000-000000000001',
      ownerId: '00000000-0000-4000-8000-000000000002',
      from: { sha256: sha('a'), format: 'pdb' },
      to: { sha256: sha('b'), format: 'pdb' },
      options: { moveThreshold: 0.01, bfactorThreshold: 1, occupancyThreshold: 0.01, limit: 100 },
    };
    const stale = new Date(Date.now() - REQUEST_WAITED_FOR_MS - 60_000);
    await rows(`insert into work_requests (queue_prefix, job_id, kind, data, requested_at, asked_at) values (?, 'diff-forgotten', 'diff', ?::jsonb, ?, ?)`, [
      stack.ctx.config.queuePrefix,
      JSON.stringify(data),
      stale,
      stale,
    ]);
    const report = await reconcile({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, requestsReconciler, 0);
    expect(report.reenqueued.map((r) => r.subject)).not.toContain('diff-forgotten');
    expect(await rows(`select job_id from work_requests where job_id = 'diff-forgotten'`)).toEqual([]);

    // Another deployment's request (its own queues, the same database) is left to that deployment.
    const recent = new Date(Date.now() - 3600_000);
    await rows(`insert into work_requests (queue_prefix, job_id, kind, data, requested_at, asked_at) values (?, 'diff-theirs', 'diff', ?::jsonb, ?, ?)`, [
      `${stack.ctx.config.queuePrefix}-elsewhere`,
      JSON.stringify(data),
      recent,
      recent,
    ]);
    const again = await reconcile({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, requestsReconciler, 0);
    expect(again.reenqueued.map((r) => r.subject)).not.toContain('diff-theirs');
    expect(await rows(`select job_id from work_requests where job_id = 'diff-theirs'`)).toEqual([{ job_id: 'diff-theirs' }]);
  });
});
