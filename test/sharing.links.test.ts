import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINK_PASSWORD_ATTEMPTS } from '../src/services/sharing/passwordAttempts.js';
import { client, storedStructure, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`anyone:${password}`).toString('base64')}` });

type AuditRow = { action: string; actor_user_id: string | null; actor_link_id: string | null; target_id: string | null; project_id: string | null };

describe('share links', () => {
  let stack: Stack;
  let owner: TestUser;
  let api: ReturnType<typeof client>;
  let projectId: string;
  let structureId: string;
  let pdb: Buffer;

  /** Audit entries naming this link, as actor or target. */
  const linkEntries = (linkId: string) =>
    stack.ctx.orm.em.fork().execute<AuditRow[]>('select * from audit_events where actor_link_id = ? or target_id = ? order by created_at', [linkId, linkId]);

  beforeAll(async () => {
    stack = await startStack({ env: { SHARE_LINK_MAX_TTL: '30d' } });
    owner = await userFactory(stack.ctx);
    api = client(stack.url, owner.token);
    projectId = (await api.post('/v1/projects', { name: 'links' })).body.id;
    pdb = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
    structureId = await storedStructure(api, projectId, '1crn.pdb', pdb);
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('creates a link (201, a 192-bit id, 7 days by default), lists it, and records one link.create by the user', async () => {
    const created = await api.post(`/v1/structures/${structureId}/links`, {});
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(created.body.url).toBe(`${stack.url}/l/${created.body.id}`);
    const lifetime = new Date(created.body.expiresAt).getTime() - Date.now();
    expect(Math.abs(lifetime - 7 * 86_400_000)).toBeLessThan(60_000);
    expect(created.body).toMatchObject({ structureId, version: null, format: 'original', password: false, state: 'active' });

    const listed = await api.get(`/v1/structures/${structureId}/links`);
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((l: { id: string }) => l.id)).toContain(created.body.id);

    const entries = await linkEntries(created.body.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ action: 'link.create', actor_user_id: owner.id, actor_link_id: null, project_id: projectId });
  });

  it('shows a browser the page and gives anything else the file; ?download=1 and /l/<id>/<name> give the file', async () => {
    const { id, url } = (await api.post(`/v1/structures/${structureId}/links`, {})).body;
    const page = await fetch(url, { headers: HTML });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toMatch(/<h1>1crn[^<]*<\/h1>/);
    expect(html).toContain('/viewer/molstar.js');
    expect(html).toContain(`/l/${id}?download=1`);
    expect(html).toContain('Version 1');
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/); // nothing from elsewhere

    for (const [target, headers] of [
      [url, {}],
      [url, { accept: 'chemical/x-pdb' }],
      [`${url}?download=1`, HTML],
      [`${url}/1crn.pdb`, HTML],
    ] as const) {
      const file = await fetch(target, { headers });
      expect(file.status, target).toBe(200);
      expect(Buffer.from(await file.arrayBuffer()).equals(pdb), target).toBe(true);
      expect(file.headers.get('content-disposition')).toContain('1crn.pdb');
    }

    const partial = await fetch(`${url}/1crn.pdb`, { headers: { range: 'bytes=10-19' } });
    expect(partial.status).toBe(206);
    expect(Buffer.from(await partial.arrayBuffer()).equals(pdb.subarray(10, 20))).toBe(true);
    const etag = partial.headers.get('etag') as string;
    const current = await fetch(`${url}/1crn.pdb`, { headers: { 'if-none-match': etag } });
    expect(current.status).toBe(304);
    const head = await fetch(`${url}/1crn.pdb`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(pdb.length));
    expect(head.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('records each page opened (link.use) and each whole download (link.download) once, with the link as actor', async () => {
    const { id, url } = (await api.post(`/v1/structures/${structureId}/links`, {})).body;
    await (await fetch(url, { headers: { ...HTML, 'user-agent': 'test-browser/1' } })).text();
    await (await fetch(`${url}?download=1`)).arrayBuffer();
    await (await fetch(`${url}/1crn.pdb`, { method: 'HEAD' })).arrayBuffer(); // neither
    await (await fetch(`${url}/1crn.pdb`, { headers: { range: 'bytes=0-9' } })).arrayBuffer(); // a part: not a download
    const entries = await linkEntries(id);
    expect(entries.map((e) => e.action)).toEqual(['link.create', 'link.use', 'link.download']);
    for (const entry of entries.slice(1)) {
      expect(entry).toMatchObject({ actor_link_id: id, actor_user_id: null, target_id: structureId, project_id: projectId });
    }
  });

  it('pins a version and a format when asked, and refuses what the server does not allow', async () => {
    const pinned = await api.post(`/v1/structures/${structureId}/links`, { version: 1, format: 'cif', expiresIn: '2d' });
    expect(pinned.status).toBe(201);
    expect(pinned.body).toMatchObject({ version: 1, format: 'cif' });
    const file = await fetch(`${pinned.body.url}?download=1`);
    expect(file.status).toBe(200);
    expect(await file.text()).toMatch(/^data_/);
    expect((await fetch(`${pinned.body.url}?download=1&version=2`)).status).toBe(403);

    expect((await api.post(`/v1/structures/${structureId}/links`, { version: 7 })).status).toBe(404);
    expect((await api.post(`/v1/structures/${structureId}/links`, { format: 'docx' })).status).toBe(400);
    const tooLong = await api.post(`/v1/structures/${structureId}/links`, { expiresIn: '31d' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toContain('30 days');
    const never = await api.post(`/v1/structures/${structureId}/links`, { expiresIn: 'never' });
    expect(never.status).toBe(400);
    expect(never.body.error.message).toContain('SHARE_LINK_ALLOW_NEVER');
    expect((await api.post(`/v1/structures/${structureId}/links`, { expiresIn: null })).status).toBe(400);
  }, 60_000);

  it('answers 410 once expired', async () => {
    const { url } = (await api.post(`/v1/structures/${structureId}/links`, { expiresIn: 1 })).body;
    expect((await fetch(url)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const expired = await fetch(url);
    expect(expired.status).toBe(410);
    expect(((await expired.json()) as any).error.message).toMatch(/expired/);
    const page = await fetch(url, { headers: HTML });
    expect(page.status).toBe(410);
    expect(await page.text()).toContain('expired');
  });

  it('revokes at once; a revoked, altered or unknown link gets the same 410 sentence; revoking twice records once', async () => {
    const { id, url } = (await api.post(`/v1/structures/${structureId}/links`, {})).body;
    expect((await fetch(url)).status).toBe(200);
    const stranger = client(stack.url, (await userFactory(stack.ctx)).token);
    expect((await stranger.delete(`/v1/links/${id}`)).status).toBe(404);
    expect((await api.delete(`/v1/links/${id}`)).status).toBe(204);
    const revoked = await fetch(url);
    expect(revoked.status).toBe(410);
    const sentence = ((await revoked.json()) as any).error.message;
    const altered = await fetch(url.replace(/.$/, (c: string) => (c === 'A' ? 'B' : 'A')));
    expect(altered.status).toBe(410);
    expect(((await altered.json()) as any).error.message).toBe(sentence);
    const unknown = await fetch(`${stack.url}/l/nonsense`);
    expect(unknown.status).toBe(410);
    expect(((await unknown.json()) as any).error.message).toBe(sentence);

    expect((await api.delete(`/v1/links/${id}`)).status).toBe(204);
    const revokes = (await linkEntries(id)).filter((e) => e.action === 'link.revoke');
    expect(revokes).toHaveLength(1);
    expect(revokes[0]).toMatchObject({ actor_user_id: owner.id, target_id: id, project_id: projectId });
    expect((await api.get(`/v1/structures/${structureId}/links`)).body.items.find((l: { id: string }) => l.id === id).state).toBe('revoked');
  });

  it('only owners of the project make, list and revoke links (others do not even see the structure)', async () => {
    const stranger = client(stack.url, (await userFactory(stack.ctx)).token);
    expect((await stranger.post(`/v1/structures/${structureId}/links`, {})).status).toBe(404);
    expect((await stranger.get(`/v1/structures/${structureId}/links`)).status).toBe(404);
    expect((await client(stack.url).post(`/v1/structures/${structureId}/links`, {})).status).toBe(401);
  });

  it('asks for a password with HTTP Basic, records refusals, and limits wrong ones per link and IP (429 with Retry-After)', async () => {
    const created = await api.post(`/v1/structures/${structureId}/links`, { password: 'open sesame' });
    expect(created.body.password).toBe(true);
    const { id, url } = created.body;
    const row = await stack.ctx.orm.em.fork().execute<{ password_hash: string }[]>('select password_hash from share_links where id = ?', [id]);
    expect(row[0].password_hash).toMatch(/^scrypt\$/);
    expect(row[0].password_hash).not.toContain('open sesame');

    const asked = await fetch(url);
    expect(asked.status).toBe(401);
    expect(asked.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const askedPage = await fetch(url, { headers: HTML });
    expect(askedPage.status).toBe(401);
    expect(askedPage.headers.get('www-authenticate')).toMatch(/^Basic/);

    const right = await fetch(`${url}?download=1`, { headers: basic('open sesame') });
    expect(right.status).toBe(200);
    expect(Buffer.from(await right.arrayBuffer()).equals(pdb)).toBe(true);

    for (let attempt = 0; attempt < LINK_PASSWORD_ATTEMPTS; attempt++) {
      const wrong = await fetch(url, { headers: basic(`guess ${attempt}`) });
      expect(wrong.status).toBe(401);
      expect(((await wrong.json()) as any).error.code).toBe('wrong_password');
    }
    const limited = await fetch(url, { headers: basic('open sesame') });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const refusals = (await linkEntries(id)).filter((e) => e.action === 'link.password_refused');
    expect(refusals).toHaveLength(LINK_PASSWORD_ATTEMPTS);
    expect(refusals[0]).toMatchObject({ actor_link_id: id, actor_user_id: null, project_id: projectId });
  });

  it('stops working when the structure is trashed (until restored) and for good when purged; purge removes its links', async () => {
    const id = await storedStructure(api, projectId, 'purged.pdb', pdb);
    const { id: linkId, url } = (await api.post(`/v1/structures/${id}/links`, {})).body;
    expect((await fetch(url)).status).toBe(200);
    expect((await api.delete(`/v1/structures/${id}`)).status).toBe(204);
    expect((await fetch(url)).status).toBe(410);
    expect((await api.post(`/v1/structures/${id}/restore`)).status).toBe(200);
    expect((await fetch(url)).status).toBe(200);
    expect((await api.raw(`/v1/structures/${id}?purge=true`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(url)).status).toBe(410);
    const rows = await stack.ctx.orm.em.fork().execute('select id from share_links where id = ?', [linkId]);
    expect(rows).toHaveLength(0);
  });

  it('stops working when its maker is disabled', async () => {
    const maker = await userFactory(stack.ctx);
    const makerApi = client(stack.url, maker.token);
    const project = (await makerApi.post('/v1/projects', { name: 'maker' })).body.id;
    const id = await storedStructure(makerApi, project, '1crn.pdb', pdb);
    const { url } = (await makerApi.post(`/v1/structures/${id}/links`, {})).body;
    expect((await fetch(url)).status).toBe(200);
    const admin = client(stack.url, (await userFactory(stack.ctx, { admin: true })).token);
    await admin.patch(`/v1/admin/users/${maker.id}`, { disabled: true });
    expect((await fetch(url)).status).toBe(410);
  });

  it('serves Mol* from the molstar package at /viewer/', async () => {
    const script = await fetch(`${stack.url}/viewer/molstar.js`, { method: 'HEAD' });
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect(Number(script.headers.get('content-length'))).toBeGreaterThan(1_000_000);
    expect((await fetch(`${stack.url}/viewer/molstar.css`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${stack.url}/viewer/share.js`)).status).toBe(200);
    expect((await fetch(`${stack.url}/viewer/package.json`)).status).toBe(404);
  });
});
