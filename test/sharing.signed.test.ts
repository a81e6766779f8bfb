import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, storedStructure, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const KEY_OLD = 'old:0123456789abcdef0123456789abcdef-old';
const KEY_NEW = 'new:fedcba9876543210fedcba9876543210-new';
const APP_ORIGIN = 'https://viewer.lab.example';

/** Audit entries of one action about one target. */
async function auditEntries(stack: Stack, action: string, targetId: string) {
  return stack.ctx.orm.em
    .fork()
    .execute<{ actor_user_id: string | null; actor_link_id: string | null; project_id: string | null; details: Record<string, unknown> }[]>(
      'select * from audit_events where action = ? and target_id = ?',
      [action, targetId],
    );
}

/** The URL with one character of its token changed at `index` (counted from the token's start). */
function tampered(url: string, part: 'kid' | 'payload' | 'signature'): string {
  const u = new URL(url);
  const [, , token, file] = u.pathname.split('/');
  const pieces = token.split('.');
  const at = { kid: 1, payload: 2, signature: 3 }[part];
  const piece = pieces[at];
  pieces[at] = (piece[5] === 'A' ? 'B' : 'A') === piece[5] ? piece : `${piece.slice(0, 5)}${piece[5] === 'A' ? 'B' : 'A'}${piece.slice(6)}`;
  u.pathname = `/s/${pieces.join('.')}/${file}`;
  return u.toString();
}

describe('signed download URLs', () => {
  let stack: Stack;
  let owner: TestUser;
  let api: ReturnType<typeof client>;
  let projectId: string;
  let structureId: string;
  let pdb: Buffer;

  beforeAll(async () => {
    stack = await startStack({ env: { SIGNING_KEYS: KEY_OLD, CORS_ORIGINS: APP_ORIGIN, SIGNED_URL_MAX_TTL: '2d' } });
    owner = await userFactory(stack.ctx);
    api = client(stack.url, owner.token);
    projectId = (await api.post('/v1/projects', { name: 'signed' })).body.id;
    pdb = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
    structureId = await storedStructure(api, projectId, '1crn.pdb', pdb);
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('downloads with no header at all; the path ends with the file name; one audit entry per URL issued', async () => {
    const issued = await api.get(`/v1/structures/${structureId}/download-url`);
    expect(issued.status).toBe(200);
    expect(issued.body.url).toMatch(/\/s\/[^/]+\/1crn\.pdb$/);
    expect(issued.body.version).toBe(1);
    expect(issued.body.format).toBe('original');
    // Default lifetime: one hour.
    const lifetime = new Date(issued.body.expiresAt).getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(3_500_000);
    expect(lifetime).toBeLessThanOrEqual(3_601_000);

    const response = await fetch(issued.body.url);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(pdb)).toBe(true);
    expect(response.headers.get('content-type')).toContain('chemical/x-pdb');
    expect(response.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(response.headers.get('content-disposition')).toContain('1crn.pdb');

    const entries = await auditEntries(stack, 'signed_url.issue', structureId);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor_user_id: owner.id, actor_link_id: null, project_id: projectId });
    expect(entries[0].details).toMatchObject({ version: 1, format: 'original' });
  });

  it('answers Range with 206, If-None-Match with 304 and HEAD with the headers only', async () => {
    const { url } = (await api.get(`/v1/structures/${structureId}/download-url`)).body;
    const partial = await fetch(url, { headers: { range: 'bytes=0-99' } });
    expect(partial.status).toBe(206);
    expect(partial.headers.get('content-range')).toBe(`bytes 0-99/${pdb.length}`);
    expect(Buffer.from(await partial.arrayBuffer()).equals(pdb.subarray(0, 100))).toBe(true);

    const etag = partial.headers.get('etag') as string;
    const again = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    await again.arrayBuffer();

    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(pdb.length));
    expect(head.headers.get('etag')).toBe(etag);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('serves a conversion when a format is asked for, under a name with that extension', async () => {
    const issued = await api.get(`/v1/structures/${structureId}/download-url?format=cif`);
    expect(issued.status).toBe(200);
    expect(issued.body.url).toMatch(/\/1crn\.cif$/);
    const response = await fetch(issued.body.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-molvault-engine')).toBeTruthy();
    expect(await response.text()).toMatch(/^data_/);
  }, 60_000);

  it('refuses unknown formats and lifetimes over SIGNED_URL_MAX_TTL, and versions that do not exist', async () => {
    expect((await api.get(`/v1/structures/${structureId}/download-url?format=docx`)).status).toBe(400);
    const tooLong = await api.get(`/v1/structures/${structureId}/download-url?expiresIn=3d`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toContain('2 days');
    expect((await api.get(`/v1/structures/${structureId}/download-url?expiresIn=never`)).status).toBe(400);
    expect((await api.get(`/v1/structures/${structureId}/download-url?version=9`)).status).toBe(404);
    const ok = await api.get(`/v1/structures/${structureId}/download-url?expiresIn=2d`);
    expect(ok.status).toBe(200);
    // A stranger cannot sign for what they cannot see.
    const stranger = client(stack.url, (await userFactory(stack.ctx)).token);
    expect((await stranger.get(`/v1/structures/${structureId}/download-url`)).status).toBe(404);
    // Without a token there is nothing to sign with.
    expect((await client(stack.url).get(`/v1/structures/${structureId}/download-url`)).status).toBe(401);
  });

  it('answers 410 once expired', async () => {
    const { url } = (await api.get(`/v1/structures/${structureId}/download-url?expiresIn=1`)).body;
    expect((await fetch(url)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const response = await fetch(url);
    expect(response.status).toBe(410);
    expect(((await response.json()) as any).error.message).toMatch(/expired/);
  });

  it('answers 403 to a tampered token, with the same sentence whatever was changed', async () => {
    const { url } = (await api.get(`/v1/structures/${structureId}/download-url`)).body;
    const messages = new Set<string>();
    for (const part of ['kid', 'payload', 'signature'] as const) {
      const changed = tampered(url, part);
      expect(changed).not.toBe(url);
      const response = await fetch(changed);
      expect(response.status, part).toBe(403);
      messages.add(((await response.json()) as any).error.message);
    }
    expect(messages.size).toBe(1);
    expect([...messages][0]).not.toMatch(/structure|version|user/i);
    expect((await fetch(`${stack.url}/s/garbage/1crn.pdb`)).status).toBe(403);
    // The file name is only a name: another one downloads the same grant.
    expect((await fetch(url.replace(/1crn\.pdb$/, 'other.pdb'))).status).toBe(200);
  });

  it('rotates keys: a URL signed with the old key verifies while the old key is still listed, and not after', async () => {
    const { url } = (await api.get(`/v1/structures/${structureId}/download-url`)).body;
    expect(new URL(url).pathname.split('/')[2].split('.')[1]).toBe('old');
    // More API processes over the same database and blobs, configured otherwise.
    const shared = { blobDir: stack.ctx.config.blobDir };
    const rotated = await startStack({ workers: false, config: shared, env: { SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}` } });
    const retired = await startStack({ workers: false, config: shared, env: { SIGNING_KEYS: KEY_NEW } });
    const generated = await startStack({ workers: false, config: shared });
    try {
      const onRotated = url.replace(stack.url, rotated.url);
      expect((await fetch(onRotated)).status).toBe(200);
      const fresh = (await client(rotated.url, owner.token).get(`/v1/structures/${structureId}/download-url`)).body.url as string;
      expect(new URL(fresh).pathname.split('/')[2].split('.')[1]).toBe('new');
      expect((await fetch(fresh)).status).toBe(200);
      expect((await fetch(fresh.replace(rotated.url, stack.url))).status).toBe(403); // the first server does not know "new"
      expect((await fetch(url.replace(stack.url, retired.url))).status).toBe(403);
      // Without configured keys a key is generated and kept in Postgres; it keeps verifying once keys are configured.
      const stored = (await client(generated.url, owner.token).get(`/v1/structures/${structureId}/download-url`)).body.url as string;
      expect(new URL(stored).pathname.split('/')[2].split('.')[1]).toMatch(/^db-/);
      expect((await fetch(stored)).status).toBe(200);
      expect((await fetch(stored.replace(generated.url, rotated.url))).status).toBe(200);
    } finally {
      await rotated.stop();
      await retired.stop();
      await generated.stop();
    }
  }, 60_000);

  it('stops working when its signer is disabled, while the structure is in the trash, and for good once purged', async () => {
    const signer = await userFactory(stack.ctx);
    const signerApi = client(stack.url, signer.token);
    const project = (await signerApi.post('/v1/projects', { name: 'revocation' })).body.id;
    const id = await storedStructure(signerApi, project, '1crn.pdb', pdb);
    const { url } = (await signerApi.get(`/v1/structures/${id}/download-url`)).body;
    expect((await fetch(url)).status).toBe(200);

    const admin = client(stack.url, (await userFactory(stack.ctx, { admin: true })).token);
    expect((await admin.patch(`/v1/admin/users/${signer.id}`, { disabled: true })).status).toBe(200);
    const refused = await fetch(url);
    expect(refused.status).toBe(410);
    const sentence = ((await refused.json()) as any).error.message;
    expect((await admin.patch(`/v1/admin/users/${signer.id}`, { disabled: false })).status).toBe(200);
    expect((await fetch(url)).status).toBe(200);

    expect((await signerApi.delete(`/v1/structures/${id}`)).status).toBe(204);
    const trashed = await fetch(url);
    expect(trashed.status).toBe(410);
    expect(((await trashed.json()) as any).error.message).toBe(sentence); // the same sentence: no hint of which
    expect((await signerApi.post(`/v1/structures/${id}/restore`)).status).toBe(200);
    expect((await fetch(url)).status).toBe(200);

    expect((await signerApi.raw(`/v1/structures/${id}?purge=true`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(url)).status).toBe(410);
  }, 60_000);

  it('CORS: an allowlisted origin may call /v1 with a token (preflight answered, headers exposed); another origin gets no CORS header', async () => {
    const preflight = await fetch(`${stack.url}/v1/structures/${structureId}/download`, {
      method: 'OPTIONS',
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization,range' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');

    const download = await api.raw(`/v1/structures/${structureId}/download?format=cif`, { headers: { origin: APP_ORIGIN } });
    expect(download.status).toBe(200);
    await download.arrayBuffer();
    expect(download.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    const exposed = (download.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(',');
    for (const header of ['etag', 'content-length', 'content-range', 'content-disposition', 'x-molvault-engine', 'x-molvault-conversion-loss']) {
      expect(exposed).toContain(header);
    }
    expect(download.headers.get('vary')?.toLowerCase()).toContain('origin');

    const elsewhere = await api.raw(`/v1/structures/${structureId}`, { headers: { origin: 'https://evil.example' } });
    expect(elsewhere.status).toBe(200);
    await elsewhere.arrayBuffer();
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
    const elsewherePreflight = await fetch(`${stack.url}/v1/structures/${structureId}`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(elsewherePreflight.headers.get('access-control-allow-origin')).toBeNull();
    await elsewherePreflight.arrayBuffer();
  });

  it('CORS: signed URLs answer any origin with *', async () => {
    const { url } = (await api.get(`/v1/structures/${structureId}/download-url`)).body;
    const response = await fetch(url, { headers: { origin: 'https://anyone.example', range: 'bytes=0-9' } });
    expect(response.status).toBe(206);
    await response.arrayBuffer();
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect((response.headers.get('access-control-expose-headers') ?? '').toLowerCase()).toContain('content-range');
    const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://anyone.example', 'access-control-request-method': 'GET' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
  });
});
