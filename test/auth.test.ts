import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiToken } from '../src/entities/ApiToken.js';
import { User } from '../src/entities/User.js';
import { hashToken } from '../src/services/auth/auth.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

describe('auth and isolation', () => {
  let stack: Stack;
  let owner: TestUser;
  let ownerApi: Client;
  let strangerApi: Client;
  let ids: { project: string; structure: string; upload: string; job: string };

  beforeAll(async () => {
    stack = await startStack();
    owner = await userFactory(stack.ctx);
    ownerApi = client(stack.url, owner.token);
    strangerApi = client(stack.url, (await userFactory(stack.ctx)).token);
    const project = await ownerApi.post('/v1/projects', { name: 'private' });
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const upload = await ownerApi.upload(`/v1/projects/${project.body.id}/structures`, { name: '1crn.pdb', content: bytes }, {}, { prefer: 'wait=30' });
    expect(upload.status).toBe(201);
    ids = { project: project.body.id, structure: upload.body.structure.id, upload: upload.body.upload.id, job: upload.body.upload.jobs[0] };
  });
  afterAll(() => stack?.stop());

  it('answers 401 without a token, with a bad token, and with a revoked or expired one', async () => {
    const anonymous = client(stack.url);
    for (const route of ['/v1/projects', `/v1/structures/${ids.structure}`, '/v1/search?q=x', `/v1/uploads/${ids.upload}`]) {
      const response = await anonymous.get(route);
      expect(response.status).toBe(401);
      expect(response.body.error.code).toBe('unauthenticated');
    }
    expect((await client(stack.url, 'mv_not-a-real-token').get('/v1/projects')).status).toBe(401);
    expect((await client(stack.url, 'something-else').get('/v1/projects')).status).toBe(401);

    const victim = await userFactory(stack.ctx);
    const em = stack.ctx.orm.em.fork();
    await em.nativeUpdate(ApiToken, { tokenHash: hashToken(victim.token) }, { revokedAt: new Date() });
    expect((await client(stack.url, victim.token).get('/v1/projects')).status).toBe(401);
    const expiring = await userFactory(stack.ctx);
    await em.nativeUpdate(ApiToken, { tokenHash: hashToken(expiring.token) }, { expiresAt: new Date(Date.now() - 1000) });
    expect((await client(stack.url, expiring.token).get('/v1/projects')).status).toBe(401);
    const disabled = await userFactory(stack.ctx);
    await em.nativeUpdate(User, { id: disabled.id }, { disabled: true });
    expect((await client(stack.url, disabled.token).get('/v1/projects')).status).toBe(401);
  });

  it("answers 404 for another user's project, structure, upload and job", async () => {
    for (const route of [
      `/v1/projects/${ids.project}`,
      `/v1/structures/${ids.structure}`,
      `/v1/structures/${ids.structure}/versions`,
      `/v1/structures/${ids.structure}/download`,
      `/v1/uploads/${ids.upload}`,
      `/v1/jobs/${ids.job}`,
    ]) {
      const response = await strangerApi.get(route);
      expect(response.status, route).toBe(404);
      expect(response.body.error.code).toBe('not_found');
      expect((await ownerApi.get(route)).status, route).toBe(200);
    }
    expect((await strangerApi.patch(`/v1/structures/${ids.structure}`, { name: 'mine now' })).status).toBe(404);
    expect((await strangerApi.delete(`/v1/structures/${ids.structure}`)).status).toBe(404);
    const upload = await strangerApi.upload(`/v1/projects/${ids.project}/structures`, { name: 'a.pdb', content: 'ATOM' });
    expect(upload.status).toBe(404);
    expect((await strangerApi.get('/v1/search?q=crambin')).body.total).toBe(0);
    expect((await stack.ctx.staging.list()).length).toBe(0);
  });

  it('keeps Bull Board for administrators only', async () => {
    const admin = await userFactory(stack.ctx, { admin: true });
    const anonymous = await fetch(`${stack.url}/admin/queues`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic');
    const nonAdmin = await fetch(`${stack.url}/admin/queues`, { headers: { authorization: `Bearer ${owner.token}` } });
    expect(nonAdmin.status).toBe(403);
    const nonAdminApi = await fetch(`${stack.url}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${owner.token}` } });
    expect(nonAdminApi.status).toBe(403);
    const basic = Buffer.from(`admin:${admin.token}`).toString('base64');
    const page = await fetch(`${stack.url}/admin/queues`, { headers: { authorization: `Basic ${basic}` } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const queues = await fetch(`${stack.url}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${admin.token}` } });
    expect(queues.status).toBe(200);
    const names = ((await queues.json()) as { queues: { name: string }[] }).queues.map((q: { name: string }) => q.name);
    expect(names).toEqual(expect.arrayContaining(['ingest', 'validate', 'snapshot', 'index']));
  });

  it('shows an admin neither another user’s structures nor the jobs of their projects (admins follow jobs of no project)', async () => {
    const admin = client(stack.url, (await userFactory(stack.ctx, { admin: true })).token);
    expect((await admin.get(`/v1/jobs/${ids.job}`)).status).toBe(404);
    expect((await admin.get(`/v1/structures/${ids.structure}`)).status).toBe(404);
  });

  it('rejects invalid ids and bodies with 400 and a reason', async () => {
    const response = await ownerApi.get('/v1/structures/not-a-uuid');
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'invalid_request' });
    expect(response.body.error.message).toContain('id');
    const project = await ownerApi.post('/v1/projects', { name: '' });
    expect(project.status).toBe(400);
    const duplicate = await ownerApi.post('/v1/projects', { name: 'private' });
    expect(duplicate.status).toBe(409);
    const badJson = await ownerApi.raw('/v1/projects', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
  });

  it('limits requests per user per minute with 429 and Retry-After', async () => {
    const limited = await startStack({ workers: false, env: { RATE_LIMIT_PER_MINUTE: '5' } });
    try {
      const api = client(limited.url, (await userFactory(limited.ctx)).token);
      const other = client(limited.url, (await userFactory(limited.ctx)).token);
      // Twelve requests at a limit of five: even if a minute window turns over mid-loop, one is refused.
      const responses = [];
      for (let i = 0; i < 12; i++) responses.push(await api.get('/v1/projects'));
      const refused = responses.find((r) => r.status === 429);
      expect(refused?.body.error.code).toBe('rate_limited');
      expect(Number(refused?.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(responses.slice(0, 5).some((r) => r.status === 200)).toBe(true);
      expect((await other.get('/v1/projects')).status).toBe(200);
      const first = await other.get('/v1/projects');
      expect(first.headers.get('ratelimit-limit')).toBe('5');
    } finally {
      await limited.stop();
    }
  });
});
