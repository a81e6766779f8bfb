import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownDatabase } from './helpers/database.js';
import { type Client, client, putDraft, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * Every route that can answer 202 honours `Prefer: wait=N` (RFC 7240): it waits for the work and
 * says so with `Preference-Applied: wait=N`, whether the work ended in time (200/201 with the
 * result) or not (202). The routes are read from the OpenAPI document, so a new 202 route without a
 * request here fails the first test. Backups dump the database: the stack has a database of its own.
 */
describe('Prefer: wait on every route that answers 202', () => {
  let stack: Stack;
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let backupDir: string;
  let api: Client;
  let adminToken: string;
  let pdb: Buffer;
  const ids = { project: '', structure: '', backup: '' };

  beforeAll(async () => {
    database = await ownDatabase('prefer');
    backupDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-test-prefer-'));
    stack = await startStack({ config: { databaseUrl: database.url }, env: { BACKUP_DIR: backupDir } });
    api = client(stack.url, (await userFactory(stack.ctx)).token);
    adminToken = (await userFactory(stack.ctx, { admin: true })).token;
    pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    ids.project = (await api.post('/v1/projects', { name: 'waiting' })).body.id;
    const first = await api.upload(`/v1/projects/${ids.project}/structures`, { name: '1crn.pdb', content: pdb }, {}, { prefer: 'wait=60' });
    expect(first.status).toBe(201);
    ids.structure = first.body.structure.id;
    const second = await api.upload(
      `/v1/structures/${ids.structure}/versions`,
      { name: '1crn-v2.pdb', content: Buffer.concat([pdb, Buffer.from('REMARK 999 SECOND\n')]) },
      {},
      { prefer: 'wait=60' },
    );
    expect(second.status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await database?.drop();
    await fs.rm(backupDir, { recursive: true, force: true });
  });

  const file = (name: string, content: Uint8Array): RequestInit => {
    const form = new FormData();
    form.append('file', new Blob([content as Uint8Array<ArrayBuffer>]), name);
    return { body: form };
  };
  const json = (body: unknown): RequestInit => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  /** For each 202 route: the request that starts its work, who sends it, and what the finished answer is. */
  const cases: Record<string, { path: () => string; init: () => Promise<RequestInit> | RequestInit; admin?: boolean; done: number[] }> = {
    'POST /v1/projects/{id}/structures': {
      path: () => `/v1/projects/${ids.project}/structures`,
      init: () => file('new.pdb', Buffer.concat([pdb, Buffer.from('REMARK 999 NEW\n')])),
      done: [201],
    },
    'POST /v1/structures/{id}/versions': {
      path: () => `/v1/structures/${ids.structure}/versions`,
      init: () => file('v3.pdb', Buffer.concat([pdb, Buffer.from('REMARK 999 THIRD\n')])),
      done: [201],
    },
    'GET /v1/structures/{id}/download': { path: () => `/v1/structures/${ids.structure}/download?format=cif&version=1`, init: () => ({}), done: [200] },
    'GET /v1/structures/{id}/diff': { path: () => `/v1/structures/${ids.structure}/diff?from=1&to=2`, init: () => ({}), done: [200] },
    'POST /v1/structures/{id}/checkpoint': {
      path: () => `/v1/structures/${ids.structure}/checkpoint`,
      init: async () => {
        expect((await putDraft(api, ids.structure, Buffer.concat([pdb, Buffer.from('REMARK 999 DRAFT\n')]))).status).toBe(200);
        return json({ message: 'from the draft' });
      },
      done: [201],
    },
    'POST /v1/projects/{id}/imports': {
      path: () => `/v1/projects/${ids.project}/imports`,
      init: () => file('imported.pdb', Buffer.concat([pdb, Buffer.from('REMARK 999 IMPORTED\n')])),
      done: [200],
    },
    'POST /v1/exports': { path: () => '/v1/exports', init: () => json({ projectId: ids.project }), done: [200] },
    'POST /v1/admin/usage/recompute': { path: () => '/v1/admin/usage/recompute', init: () => ({}), admin: true, done: [200] },
    'POST /v1/admin/backups': { path: () => '/v1/admin/backups', init: () => ({}), admin: true, done: [200] },
    'POST /v1/admin/backups/{id}/verify': { path: () => `/v1/admin/backups/${ids.backup}/verify`, init: () => ({}), admin: true, done: [200] },
  };

  async function send(key: string, prefer?: string) {
    const [method, route] = key.split(' ');
    const request = cases[key];
    const init = await request.init();
    const token = request.admin ? adminToken : undefined;
    const response = await (token ? client(stack.url, token) : api).raw(request.path(), {
      ...init,
      method,
      headers: { ...(init.headers as Record<string, string>), ...(prefer ? { prefer } : {}) },
    });
    const text = await response.text();
    const body = (response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : { bytes: text.length }) as Record<string, any>;
    return { route, status: response.status, applied: response.headers.get('preference-applied'), location: response.headers.get('location'), body };
  }

  it('has a request for every route the OpenAPI document says can answer 202', async () => {
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const accepted = Object.entries(doc.paths).flatMap(([route, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.responses && '202' in operation.responses)
        .map(([method]) => `${method.toUpperCase()} ${route}`),
    );
    expect(accepted.length).toBeGreaterThanOrEqual(10);
    expect(accepted.filter((key) => !(key in cases)).sort(), '202 routes this test does not try').toEqual([]);
  });

  it('waits and answers Preference-Applied on each of them, with the finished work or 202', async () => {
    // In this order: the verify needs the backup made before it.
    for (const key of Object.keys(cases)) {
      const answer = await send(key, 'wait=60');
      expect(answer.applied, `${key}: ${JSON.stringify(answer.body)}`).toBe('wait=60');
      expect([202, ...cases[key].done], `${key}: ${JSON.stringify(answer.body)}`).toContain(answer.status);
      if (answer.status === 202) expect(answer.location, key).toBeTruthy();
      if (key === 'POST /v1/admin/backups') {
        ids.backup = answer.body.backup.id;
        if (answer.status === 200) expect(answer.body.job).toMatchObject({ state: 'completed', name: 'backup' });
      }
      if (key === 'POST /v1/admin/backups/{id}/verify' && answer.status === 200) expect(answer.body.job.result).toMatchObject({ ok: true });
      if (key === 'POST /v1/projects/{id}/imports' && answer.status === 200)
        expect(answer.body.import).toMatchObject({ state: 'completed', succeeded: 1, pending: 0 });
    }
  }, 600_000);

  it('answers 202 at once, without Preference-Applied, when nothing asks to wait', async () => {
    for (const key of ['POST /v1/admin/usage/recompute', 'POST /v1/projects/{id}/imports', 'POST /v1/admin/backups']) {
      const answer = await send(key);
      expect(answer.status, key).toBe(202);
      expect(answer.applied, key).toBeNull();
    }
  }, 120_000);
});
