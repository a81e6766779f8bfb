import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../src/runtime/net.js';
import { type Client, client, userFactory, waitForUpload } from './helpers/factories.js';
import { waitForImport } from './helpers/imports.js';
import { type MolvaultProcess, startMolvault } from './helpers/processes.js';
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

/** A request that must answer, whatever it answers, well before a client would give up on it. */
const ANSWER_WITHIN_MS = 30_000;

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name), 'latin1');

/**
 * Redis stopped under a running `molvault api` and `molvault worker` (real processes, a Redis of
 * this test's own), then started again empty. Nothing is restarted but Redis.
 */
describe('Redis unreachable, then back empty (a Redis of this test its own, molvault api and worker as processes)', () => {
  let redis: TestRedis;
  let stack: Stack;
  let api: MolvaultProcess;
  let worker: MolvaultProcess;
  let baseUrl: string;
  let http: Client;
  let projectId: string;

  beforeAll(async () => {
    redis = await startTestRedis();
    // The test's own handle on the database (users, counts); its in-process API is not used.
    stack = await startStack({ workers: false, env: QUICK, config: { redisUrl: redis.url } });
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const env = {
      ...QUICK,
      DATABASE_URL: inject('databaseUrl'),
      REDIS_URL: redis.url,
      QUEUE_PREFIX: stack.ctx.config.queuePrefix,
      DATA_DIR: stack.dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      PARSE_THREADS: '1',
      RATE_LIMIT_PER_MINUTE: '0',
      BACKUP_SCHEDULE: 'off',
      // Info, so the lines an outage makes (connection errors, jobs waiting) are all read for JSON.
      LOG_LEVEL: 'info',
    };
    api = startMolvault(['api'], env);
    worker = startMolvault(['worker'], env);
    await api.waitForLog(/^API listening$/);
    await worker.waitForLog(/^workers started$/);
    const user = await userFactory(stack.ctx);
    http = client(baseUrl, user.token);
    projectId = (await http.post('/v1/projects', { name: 'redis outage' })).body.id;
  }, 300_000);

  afterAll(async () => {
    await api?.stop();
    await worker?.stop();
    await stack?.stop();
    await redis?.close();
  }, 120_000);

  it('answers 503 for what needs Redis, serves what needs only Postgres, says which is down, and loses nothing once Redis is back', async () => {
    const crambin = await fixture('ngl_1crn.pdb');
    const multi = await fixture('ngl_multi-models-example.pdb');
    // Stored before the outage: a structure with two versions (for a diff) and a search to run.
    const first = await http.upload(`/v1/projects/${projectId}/structures`, { name: 'crambin.pdb', content: crambin }, {}, { prefer: 'wait=60' });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const structureId = first.body.structure.id;
    const second = await http.upload(
      `/v1/structures/${structureId}/versions`,
      { name: 'crambin.pdb', content: `REMARK 999 SECOND\n${crambin}` },
      {},
      { prefer: 'wait=60' },
    );
    expect(second.status, JSON.stringify(second.body)).toBe(201);

    // Accepted just before the outage: some may still be in Redis when it dies with them.
    const justBefore: string[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await http.upload(`/v1/projects/${projectId}/structures`, { name: `before-${i}.pdb`, content: `REMARK 999 BEFORE ${i}\n${multi}` });
      expect(response.status, JSON.stringify(response.body)).toBe(202);
      justBefore.push(response.body.upload.id);
    }
    await redis.stop();

    const timed = (pathname: string, init: RequestInit = {}) => http.raw(pathname, { ...init, signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });

    // What needs only Postgres (and the blob store) is served.
    const structure = await timed(`/v1/structures/${structureId}`);
    expect(structure.status).toBe(200);
    expect(((await structure.json()) as any).currentVersion.number).toBe(2);
    const download = await timed(`/v1/structures/${structureId}/download`);
    expect(download.status).toBe(200);
    expect((await download.text()).startsWith('REMARK 999 SECOND')).toBe(true);
    const search = await timed(`/v1/search?q=crambin`);
    expect(search.status, await search.clone().text()).toBe(200);
    expect(((await search.json()) as any).items.map((i: any) => i.structure.id)).toContain(structureId);
    const versions = await timed(`/v1/structures/${structureId}/versions`);
    expect(versions.status).toBe(200);
    const upload = await timed(`/v1/uploads/${justBefore[0]}`);
    expect(upload.status).toBe(200);

    // What needs Redis: "not now", with when to ask again and a sentence, never 500 or a hang.
    const refusedNow: Record<string, { status: number; retryAfter: string | null; body: any }> = {};
    const note = async (label: string, response: Response) => {
      const text = await response.text();
      refusedNow[label] = { status: response.status, retryAfter: response.headers.get('retry-after'), body: text ? JSON.parse(text) : undefined };
    };
    await note('convert', await timed(`/v1/structures/${structureId}/download?format=cif`));
    await note('diff', await timed(`/v1/structures/${structureId}/diff`));
    await note('job', await timed(`/v1/jobs/ingest-${justBefore[0]}`));
    const form = new FormData();
    form.append('file', new Blob([`REMARK 999 DURING\n${multi}`]), 'during.pdb');
    await note('upload', await timed(`/v1/projects/${projectId}/structures`, { method: 'POST', body: form }));
    const importForm = new FormData();
    for (let i = 0; i < 3; i++) importForm.append('file', new Blob([`REMARK 999 IMPORT ${i}\n${multi}`]), `during/${i}.pdb`);
    await note('import', await timed(`/v1/projects/${projectId}/imports`, { method: 'POST', body: importForm }));
    await note(
      'export',
      await timed('/v1/exports', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ structureIds: [structureId] }) }),
    );
    for (const [label, answer] of Object.entries(refusedNow)) {
      expect(answer.status, `${label}: ${JSON.stringify(answer.body)}`).not.toBe(500);
      if (answer.status === 503) {
        expect(answer.retryAfter, label).toMatch(/^\d+$/);
        expect(answer.body.error, label).toMatchObject({ code: 'service_unavailable', details: { unavailable: 'redis' } });
        expect(answer.body.error.message, label).toMatch(/job queue \(Redis\) is unreachable/);
      }
    }
    expect(refusedNow.convert.status).toBe(503);
    expect(refusedNow.diff.status).toBe(503);
    expect(refusedNow.job.status).toBe(503);
    // An upload, an import or an export needs Redis only to start its job: recorded in Postgres (and
    // staged), it is accepted (202) and reconcile starts it once Redis is back.
    expect(refusedNow.upload.status).toBe(202);
    expect(refusedNow.import.status).toBe(202);
    expect(refusedNow.export.status).toBe(202);

    const ready = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toMatch(/^\d+$/);
    const readyBody = (await ready.json()) as any;
    expect(readyBody.unavailable).toEqual(['redis']);
    expect(readyBody.message).toMatch(/redis is unreachable/);

    // Redis comes back without its data; no molvault process is restarted.
    await redis.start();
    await expect.poll(async () => (await fetch(`${baseUrl}/readyz`)).status, { timeout: 120_000, interval: 250 }).toBe(200);
    const stored = async (id: string) => (await waitForUpload(http, id, 300_000)).state;
    for (const id of justBefore) expect(await stored(id)).toBe('stored');
    expect(await stored(refusedNow.upload.body.upload.id)).toBe('stored');
    const done = await waitForImport(http, refusedNow.import.body.import.id, 300_000);
    expect(done).toMatchObject({ state: 'completed', total: 3, succeeded: 3 });
    const exportId = refusedNow.export.body.export.id;
    await expect.poll(async () => (await http.get(`/v1/exports/${exportId}`)).body.state, { timeout: 300_000, interval: 250 }).toBe('completed');
    // What was refused works now, asked again the same way.
    const converted = await http.raw(`/v1/structures/${structureId}/download?format=cif`, { headers: { prefer: 'wait=60' } });
    expect(converted.status).toBe(200);
    expect(await converted.text()).toMatch(/^data_/);
    const diff = await http.get(`/v1/structures/${structureId}/diff`, { prefer: 'wait=60' });
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    const again = await http.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'after.pdb', content: `REMARK 999 AFTER\n${multi}` },
      {},
      { prefer: 'wait=60' },
    );
    expect(again.status, JSON.stringify(again.body)).toBe(201);

    // Each accepted upload stored once: one structure with one version per new-structure upload.
    const [counts] = await stack.ctx.orm.em.fork().execute<{ structures: number; versions: number; failed: number }[]>(
      `select (select count(*) from structures where project_id = ?)::int as structures,
              (select count(*) from structure_versions v join structures s on s.id = v.structure_id where s.project_id = ?)::int as versions,
              (select count(*) from uploads where project_id = ? and state in ('failed', 'rejected'))::int as failed`,
      [projectId, projectId, projectId],
    );
    // crambin, the uploads before, the upload and the 3 import items during, the upload after.
    const newStructures = 1 + justBefore.length + 1 + 3 + 1;
    expect(counts).toEqual({ structures: newStructures, versions: newStructures + 1, failed: 0 });

    // Neither process was restarted, and neither wrote a line that is not JSON, outage included.
    expect(api.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
    expect(api.notJson()).toEqual([]);
    expect(worker.notJson()).toEqual([]);
    // The outage was seen and logged (as JSON), not silently swallowed.
    expect(api.logged(/could not enqueue ingest|could not add the import flow/).length).toBeGreaterThan(0);
  }, 900_000);
});
