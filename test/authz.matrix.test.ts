import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../src/services/auth/auth.js';
import { type Client, client, storedStructure, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * THE AUTHORIZATION MATRIX, generated from the OpenAPI document: every route and method of
 * /docs/openapi.json declares who may call it (`x-molvault-access`, see RouteAccess in
 * src/api/openapi.ts); this test calls each one as each persona and checks the status that the
 * declaration implies:
 *  - anonymous and an expired token: 401;
 *  - someone with no role in the project (an outsider, an administrator who is not a member, a
 *    token limited to another project): 404, never 403;
 *  - a member whose role is too low, or a read-only token asked to change something: 403;
 *  - everyone else: not refused (any status but 401, 403 and the access module's 404).
 * A route of the document without a request here fails the test, so a new route must be added.
 * Then every list, search, facet and job of an outsider is checked for the project's data.
 */

type Access = 'public' | 'admin' | { user: 'read' | 'write' } | { on: string; need: 'read' | 'write' | 'own' };
type Persona = 'anonymous' | 'outsider' | 'viewer' | 'editor' | 'owner' | 'teamMember' | 'readToken' | 'otherProjectToken' | 'expiredToken' | 'admin';
const PERSONAS: Persona[] = ['anonymous', 'outsider', 'viewer', 'editor', 'owner', 'teamMember', 'readToken', 'otherProjectToken', 'expiredToken', 'admin'];
const RANK = { read: 1, write: 2, own: 3 } as const;

/** Each persona's role rank in the shared project (0: none), and whether its token may write. */
const PROJECT_RANK: Record<Persona, number> = {
  anonymous: 0,
  outsider: 0,
  viewer: 1,
  editor: 2,
  owner: 3,
  teamMember: 2,
  readToken: 3,
  otherProjectToken: 0,
  expiredToken: 0,
  admin: 0,
};
const READ_ONLY: Persona[] = ['readToken'];
/** The team the team routes act on: its maintainer (the owner), a member, and administrators. */
const TEAM_RANK: Record<Persona, number> = {
  anonymous: 0,
  outsider: 0,
  viewer: 0,
  editor: 0,
  owner: 3,
  teamMember: 1,
  readToken: 3,
  otherProjectToken: 3,
  expiredToken: 0,
  admin: 3,
};
/** Exports are their requester's own (the owner's here); a token limited to another project does not reach them. */
const EXPORT_RANK: Record<Persona, number> = { ...PROJECT_RANK, viewer: 0, editor: 0, teamMember: 0 };

type Expected = 'allowed' | 401 | 403 | 404;

/**
 * Routes whose subject is named in the body, not the path: their rule is the project's, as the
 * access module applies it to what the body names (here, the shared project's structure).
 */
const BODY_SUBJECT: Record<string, Access> = {
  'POST /v1/exports': { on: 'project', need: 'write' },
  // A share link's id leads to its structure, whose owners alone may revoke it.
  'DELETE /v1/links/{id}': { on: 'structure', need: 'own' },
};
/** Routes a member of any role may call that still change something: a read-only token may not. */
const CHANGES_BY_ANY_MEMBER = new Set(['POST /v1/projects/{id}/leave']);

function expected(declared: Access, persona: Persona, key: string): Expected {
  const rule = BODY_SUBJECT[key] ?? declared;
  if (CHANGES_BY_ANY_MEMBER.has(key) && READ_ONLY.includes(persona)) return 403;
  if (rule === 'public') return 'allowed';
  if (persona === 'anonymous' || persona === 'expiredToken') return 401;
  if (rule === 'admin') return persona === 'admin' ? 'allowed' : 403;
  if ('user' in rule) return rule.user === 'write' && READ_ONLY.includes(persona) ? 403 : 'allowed';
  const rank = (rule.on === 'team' ? TEAM_RANK : rule.on === 'export' ? EXPORT_RANK : PROJECT_RANK)[persona];
  if (rank === 0) return 404;
  if (rule.on !== 'export' && rank < RANK[rule.need]) return 403;
  if (rule.need !== 'read' && READ_ONLY.includes(persona)) return 403;
  return 'allowed';
}

/** The access module's "invisible" answer (other 404s, such as "this structure has no draft", are a route's own). */
const ACCESS_404 = /^No (project|structure|upload|import|export|job|team)s? with (that|the) id/;

describe('authorization matrix (from the OpenAPI document)', () => {
  let stack: Stack;
  let pdb: Buffer;
  const users = {} as Record<'owner' | 'viewer' | 'editor' | 'teamMember' | 'outsider' | 'admin' | 'spare', TestUser>;
  const tokens = {} as Record<Persona, string | undefined>;
  let ownerApi: Client;
  const ids = {
    project: '',
    other: '',
    structure: '',
    target: '',
    relationship: '',
    upload: '',
    job: '',
    export: '',
    import: '',
    team: '',
    spareMember: '',
    link: '',
    signedPath: '',
  };

  beforeAll(async () => {
    stack = await startStack();
    pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    for (const name of ['owner', 'viewer', 'editor', 'teamMember', 'outsider', 'spare'] as const) users[name] = await userFactory(stack.ctx);
    users.admin = await userFactory(stack.ctx, { admin: true });
    ownerApi = client(stack.url, users.owner.token);
    ids.project = (await ownerApi.post('/v1/projects', { name: 'shared', tags: ['kept'] })).body.id;
    ids.other = (await ownerApi.post('/v1/projects', { name: 'other' })).body.id;
    const upload = await ownerApi.upload(`/v1/projects/${ids.project}/structures`, { name: '1crn.pdb', content: pdb }, { tags: 'kept' }, { prefer: 'wait=30' });
    expect([201, 202]).toContain(upload.status);
    ids.structure = upload.body.structure.id;
    ids.upload = upload.body.upload.id;
    // A loaded machine may answer 202 before the pipeline ends: then wait for it (timing decides nothing here).
    ids.job = (await waitForUpload(ownerApi, ids.upload, 180_000)).jobs[0];
    ids.target = await storedStructure(ownerApi, ids.project, 'target.pdb', pdb);
    ids.relationship = (await ownerApi.post(`/v1/structures/${ids.structure}/relationships`, { type: 'related', targetId: ids.target })).body.id;
    const exported = await ownerApi.post('/v1/exports', { projectId: ids.project }, { prefer: 'wait=60' });
    ids.export = exported.body.export.id;
    const form = new FormData();
    form.append('file', new Blob([pdb]), 'again.pdb');
    const imported = await ownerApi.raw(`/v1/projects/${ids.project}/imports`, { method: 'POST', body: form });
    ids.import = ((await imported.json()) as { import: { id: string } }).import.id;

    for (const [name, role] of [
      ['viewer', 'viewer'],
      ['editor', 'editor'],
    ] as const) {
      expect((await ownerApi.post(`/v1/projects/${ids.project}/members`, { email: users[name].email, role })).status).toBe(201);
    }
    const spare = await ownerApi.post(`/v1/projects/${ids.project}/members`, { email: users.spare.email, role: 'viewer' });
    ids.spareMember = spare.body.id;
    const lab = await ownerApi.post('/v1/teams', { name: 'lab' });
    expect(lab.status).toBe(201);
    expect((await ownerApi.post(`/v1/teams/${lab.body.id}/members`, { email: users.teamMember.email, role: 'member' })).status).toBe(201);
    expect((await ownerApi.post(`/v1/projects/${ids.project}/members`, { teamId: lab.body.id, role: 'editor' })).status).toBe(201);
    ids.team = lab.body.id;
    // Sharing: a share link and a signed URL of the owner's, for the routes that carry their own authorization.
    ids.link = (await ownerApi.post(`/v1/structures/${ids.structure}/links`, {})).body.id;
    ids.signedPath = new URL((await ownerApi.get(`/v1/structures/${ids.structure}/download-url`)).body.url).pathname;

    const em = stack.ctx.orm.em.fork();
    for (const name of ['owner', 'viewer', 'editor', 'teamMember', 'outsider', 'admin'] as const) tokens[name] = users[name].token;
    tokens.readToken = (await createToken(em, users.owner.id, { name: 'read', scopes: ['read'] })).token;
    tokens.otherProjectToken = (await createToken(em, users.owner.id, { name: 'other', scopes: ['read', 'write'], projectIds: [ids.other] })).token;
    tokens.expiredToken = (await createToken(em, users.owner.id, { name: 'expired', expiresAt: new Date(Date.now() - 60_000) })).token;
    tokens.anonymous = undefined;
  }, 600_000);
  afterAll(() => stack?.stop());

  /** A request each route accepts when access allows it (so that only access can refuse it). */
  async function requestFor(method: string, route: string): Promise<RequestInit | undefined> {
    const json = (body: unknown): RequestInit => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const file = (): RequestInit => {
      const form = new FormData();
      form.append('file', new Blob([pdb]), 'matrix.pdb');
      return { body: form };
    };
    const sha256 = 'a'.repeat(64);
    const requests: Record<string, () => RequestInit | Promise<RequestInit>> = {
      'GET /healthz': () => ({}),
      'GET /readyz': () => ({}),
      'GET /metrics': () => ({}),
      'POST /v1/projects': () => json({ name: `p-${Math.random()}` }),
      'GET /v1/projects': () => ({}),
      'GET /v1/projects/{id}': () => ({}),
      'PATCH /v1/projects/{id}': () => json({ description: 'changed' }),
      'DELETE /v1/projects/{id}': () => ({}),
      'POST /v1/projects/{id}/structures': file,
      'POST /v1/structures/{id}/versions': file,
      'GET /v1/structures': () => ({}),
      'GET /v1/structures/{id}': () => ({}),
      'PATCH /v1/structures/{id}': () => json({ description: 'changed' }),
      'DELETE /v1/structures/{id}': () => ({}),
      'POST /v1/structures/{id}/restore': () => ({}),
      'GET /v1/structures/{id}/versions': () => ({}),
      'GET /v1/structures/{id}/versions/{n}': () => ({}),
      'PATCH /v1/structures/{id}/versions/{n}': () => json({ pinned: true }),
      'GET /v1/structures/{id}/download': () => ({}),
      'GET /v1/uploads/{id}': () => ({}),
      'POST /v1/projects/{id}/imports': () => json({ pdbIds: ['1CRN'] }),
      'POST /v1/projects/{id}/imports/check': () => json({ sha256: [sha256] }),
      'POST /v1/projects/{id}/imports/known': () => json({ sha256: [sha256] }),
      'GET /v1/imports': () => ({}),
      'GET /v1/imports/{id}': () => ({}),
      'GET /v1/jobs/{id}': () => ({}),
      'GET /v1/jobs/{id}/events': () => ({}),
      'GET /v1/search': () => ({}),
      'PUT /v1/structures/{id}/draft': () => ({ headers: { 'content-type': 'application/octet-stream' }, body: pdb }),
      'GET /v1/structures/{id}/draft': () => ({}),
      'DELETE /v1/structures/{id}/draft': () => ({}),
      'POST /v1/structures/{id}/checkpoint': () => json({}),
      'GET /v1/usage': () => ({}),
      'GET /v1/admin/users': () => ({}),
      'PATCH /v1/admin/users/{id}': () => json({}),
      'POST /v1/admin/usage/recompute': () => ({}),
      'POST /v1/structures/{id}/rollback': () => json({ version: 1 }),
      'GET /v1/structures/{id}/diff': () => ({}),
      'GET /v1/trash': () => ({}),
      'GET /v1/structures/{id}/metadata': () => ({}),
      'PUT /v1/structures/{id}/metadata': () => json({ note: 'x' }),
      'PATCH /v1/structures/{id}/metadata': () => json({ note: 'y' }),
      'DELETE /v1/structures/{id}/metadata': () => ({}),
      'GET /v1/projects/{id}/own-metadata': () => ({}),
      'PUT /v1/projects/{id}/own-metadata': () => json({ note: 'x' }),
      'PATCH /v1/projects/{id}/own-metadata': () => json({ note: 'y' }),
      'DELETE /v1/projects/{id}/own-metadata': () => ({}),
      'GET /v1/projects/{id}/metadata-schema': () => ({}),
      'PUT /v1/projects/{id}/metadata-schema': () => json({ type: 'object' }),
      'DELETE /v1/projects/{id}/metadata-schema': () => ({}),
      'GET /v1/projects/{id}/metadata': () => ({}),
      'POST /v1/projects/{id}/metadata': () => json({ structures: [] }),
      'POST /v1/structures/{id}/tags': () => json({ tags: ['added'] }),
      'DELETE /v1/structures/{id}/tags/{tag}': () => ({}),
      'POST /v1/projects/{id}/tags/rename': () => json({ from: 'added', to: 'renamed' }),
      'DELETE /v1/projects/{id}/tags/{tag}': () => ({}),
      'GET /v1/tags': () => ({}),
      'POST /v1/structures/{id}/relationships': () => json({ type: 'derived_from', targetId: ids.target }),
      'GET /v1/structures/{id}/relationships': () => ({}),
      'DELETE /v1/structures/{id}/relationships/{relationshipId}': () => ({}),
      'POST /v1/exports': () => json({ structureIds: [ids.structure] }),
      'GET /v1/exports': () => ({}),
      'GET /v1/exports/{id}': () => ({}),
      'GET /v1/exports/{id}/download': () => ({}),
      'DELETE /v1/exports/{id}': () => ({}),
      'GET /v1/admin/storage': () => ({}),
      'GET /v1/admin/backups': () => ({}),
      'POST /v1/admin/backups': () => ({}),
      'POST /v1/admin/backups/{id}/verify': () => ({}),
      'GET /v1/projects/{id}/members': () => ({}),
      'POST /v1/projects/{id}/members': () => json({ email: users.outsider.email, role: 'viewer' }),
      'PATCH /v1/projects/{id}/members/{memberId}': () => json({ role: 'viewer' }),
      'DELETE /v1/projects/{id}/members/{memberId}': () => ({}),
      'POST /v1/projects/{id}/leave': () => ({}),
      'POST /v1/teams': () => json({ name: 'another' }),
      'GET /v1/teams': () => ({}),
      'GET /v1/teams/{id}': () => ({}),
      'DELETE /v1/teams/{id}': () => ({}),
      'POST /v1/teams/{id}/members': () => json({ email: users.spare.email, role: 'member' }),
      'DELETE /v1/teams/{id}/members/{userId}': () => ({}),
      'POST /v1/tokens': () => json({ name: 'made', scopes: ['read'] }),
      'GET /v1/tokens': () => ({}),
      'DELETE /v1/tokens/{id}': () => ({}),
      'GET /v1/projects/{id}/audit': () => ({}),
      'GET /v1/admin/audit': () => ({}),
      'GET /docs/assets/{name}': () => ({}),
      'GET /v1/structures/{id}/download-url': () => ({}),
      'POST /v1/structures/{id}/links': () => json({}),
      'GET /v1/structures/{id}/links': () => ({}),
      'DELETE /v1/links/{id}': () => ({}),
      'GET /l/{id}': () => ({}),
      'GET /l/{id}/{filename}': () => ({}),
      'GET /s/{token}/{filename}': () => ({}),
    };
    const make = requests[`${method.toUpperCase()} ${route}`];
    return make && { ...(await make()), method: method.toUpperCase() };
  }

  /** Fresh things for routes that consume what they act on, so every persona meets the same state. */
  async function concretePath(route: string, method: string): Promise<string> {
    if (route === '/docs/assets/{name}') return '/docs/assets/swagger-ui.css';
    if (route === '/s/{token}/{filename}') return ids.signedPath;
    if (route.startsWith('/l/')) return route.replace('{id}', ids.link).replace('{filename}', '1crn.pdb');
    // Revoking consumes the link: each persona meets a fresh one.
    if (route === '/v1/links/{id}') return `/v1/links/${(await ownerApi.post(`/v1/structures/${ids.structure}/links`, {})).body.id}`;
    const kind = route.split('/')[2];
    let id: string | undefined = {
      projects: ids.project,
      structures: ids.structure,
      uploads: ids.upload,
      imports: ids.import,
      jobs: ids.job,
      exports: ids.export,
      teams: ids.team,
      admin: users.spare.id,
    }[kind];
    let userId = users.spare.id;
    if (route === '/v1/teams/{id}' && method === 'delete') {
      id = (await ownerApi.post('/v1/teams', { name: 'doomed' })).body.id;
      await ownerApi.post(`/v1/teams/${id}/members`, { email: users.teamMember.email });
    }
    if (route === '/v1/teams/{id}/members/{userId}') {
      id = (await ownerApi.post('/v1/teams', { name: 'doomed' })).body.id;
      await ownerApi.post(`/v1/teams/${id}/members`, { email: users.teamMember.email });
      await ownerApi.post(`/v1/teams/${id}/members`, { email: users.spare.email });
      userId = users.spare.id;
    }
    if (route === '/v1/tokens/{id}') id = (await createToken(stack.ctx.orm.em.fork(), users.owner.id, { name: 'doomed' })).id;
    if (route === '/v1/admin/backups/{id}/verify') id = '20260101T000000Z-000000';
    if (route.includes('{memberId}')) {
      const added = await ownerApi.post(`/v1/projects/${ids.project}/members`, { email: users.spare.email, role: 'viewer' });
      if (added.status === 201) ids.spareMember = added.body.id;
    }
    if (!id && route.includes('{id}')) throw new Error(`no id for ${route}`);
    return route
      .replace('{id}', id ?? '')
      .replace('{n}', '1')
      .replace('{tag}', 'renamed')
      .replace('{relationshipId}', ids.relationship)
      .replace('{memberId}', ids.spareMember)
      .replace('{userId}', userId);
  }

  /** Puts back what an allowed request took away (a trashed structure, a member who left). */
  async function repair(route: string, method: string, persona: Persona): Promise<void> {
    if (route === '/v1/structures/{id}' && method === 'delete') await ownerApi.post(`/v1/structures/${ids.structure}/restore`, {});
    if (route === '/v1/projects/{id}/leave' && (persona === 'viewer' || persona === 'editor')) {
      await ownerApi.post(`/v1/projects/${ids.project}/members`, { email: users[persona].email, role: persona });
    }
    if (route === '/v1/projects/{id}/members' && method === 'post') {
      const members = (await ownerApi.get(`/v1/projects/${ids.project}/members`)).body.items as { id: string; user: { id: string } | null }[];
      const added = members.find((m) => m.user?.id === users.outsider.id);
      if (added) await ownerApi.delete(`/v1/projects/${ids.project}/members/${added.id}`);
    }
  }

  it('answers every route and method as its declared access says, for every persona', async () => {
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { 'x-molvault-access'?: Access }>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([route, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({ method, route, rule: operation['x-molvault-access'] })),
    );
    expect(
      routes.filter((r) => !r.rule).map((r) => `${r.method} ${r.route}`),
      'routes without a declared access',
    ).toEqual([]);
    const uncovered: string[] = [];
    for (const { method, route } of routes) if (!(await requestFor(method, route))) uncovered.push(`${method.toUpperCase()} ${route}`);
    expect(uncovered, 'routes the matrix does not cover: add a request for each').toEqual([]);

    const failures: string[] = [];
    let checked = 0;
    for (const { method, route, rule } of routes) {
      for (const persona of PERSONAS) {
        const want = expected(rule as Access, persona, `${method.toUpperCase()} ${route}`);
        const request = (await requestFor(method, route)) as RequestInit;
        const url = `${stack.url}${await concretePath(route, method)}`;
        const token = tokens[persona];
        const controller = new AbortController();
        const response = await fetch(url, {
          ...request,
          signal: controller.signal,
          headers: { ...(request.headers as Record<string, string>), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        });
        const text = route.endsWith('/events') && response.status === 200 ? '' : await response.text();
        controller.abort();
        let message = '';
        try {
          message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? '';
        } catch {}
        const got = response.status;
        const refusedByAccess = got === 401 || got === 403 || (got === 404 && ACCESS_404.test(message));
        const ok = want === 'allowed' ? !refusedByAccess && got < 500 : got === want;
        if (!ok) failures.push(`${method.toUpperCase()} ${route} as ${persona}: expected ${want}, got ${got} ${message}`);
        checked++;
        await repair(route, method, persona);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(800);
  }, 600_000);

  it('shows an outsider, an administrator and a token of another project nothing of the project in any list, search, facet or job', async () => {
    for (const persona of ['outsider', 'admin', 'otherProjectToken'] as const) {
      const api = client(stack.url, tokens[persona] as string);
      const lists = [
        '/v1/projects',
        '/v1/structures',
        `/v1/structures?project=${ids.project}`,
        '/v1/trash',
        '/v1/imports',
        '/v1/exports',
        '/v1/tags',
        '/v1/usage',
        '/v1/search?facets=tag,kind,format,method',
        '/v1/search?q=crambin&facets=tag',
        '/v1/search?tag=kept',
        `/v1/jobs/${ids.job}`,
        `/v1/jobs/${ids.job}/events`,
      ];
      for (const list of lists) {
        const answer = await api.get(list);
        const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        // What the caller sent itself (the project id in ?project=) may be echoed; nothing else of the project may show.
        for (const secret of [ids.project, ids.structure, ids.target, ids.upload, ids.import, ids.export, 'kept', 'shared'].filter((s) => !list.includes(s))) {
          expect(text.includes(secret), `${persona} ${list} shows ${secret}: ${text.slice(0, 300)}`).toBe(false);
        }
      }
    }
  });

  it('pages a member through exactly the projects they may see (a cursor never widens the list)', async () => {
    // The viewer owns a project too: visibility is then "own or shared", and page 2 must keep it.
    const api = client(stack.url, tokens.viewer as string);
    const own = (await api.post('/v1/projects', { name: 'viewer-own' })).body.id;
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await api.get(`/v1/projects?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((p: { id: string }) => p.id));
      cursor = page.body.nextCursor;
    } while (cursor && seen.length < 20);
    const whole = (await api.get('/v1/projects?limit=100')).body.items.map((p: { id: string }) => p.id);
    expect(whole).toContain(ids.project);
    expect(whole).toContain(own);
    expect(whole).not.toContain(ids.other);
    expect(seen.sort()).toEqual(whole.sort());
  });

  it('shows members the shared project in lists and search, by scope', async () => {
    for (const persona of ['viewer', 'editor', 'teamMember'] as const) {
      const api = client(stack.url, tokens[persona] as string);
      expect((await api.get('/v1/projects')).body.items.map((p: { id: string }) => p.id)).toContain(ids.project);
      const all = await api.get('/v1/search?facets=tag');
      expect(all.body.items.map((i: { structure: { id: string } }) => i.structure.id)).toContain(ids.structure);
      expect(all.body.facets.tag.kept).toBeGreaterThan(0);
      expect((await api.get('/v1/search?scope=shared')).body.total).toBe(all.body.total);
      expect((await api.get('/v1/search?scope=mine')).body.total).toBe(0);
      expect((await api.get(`/v1/jobs/${ids.job}`)).status).toBe(200);
      expect((await api.get(`/v1/uploads/${ids.upload}`)).status).toBe(200);
    }
  });
});
