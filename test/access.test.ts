import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, putDraft, storedStructure, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * The access module (src/api/access.ts) is the one way a route finds what it acts on: someone
 * else's project, structure, upload, import, export or job answers 404, exactly as a missing one
 * does, on every route of the OpenAPI document that takes such an id (in its path or its body),
 * and changes nothing. A route added with an id and no request here fails the first test.
 */
describe('access: what is not yours answers 404 on every route', () => {
  let stack: Stack;
  let ownerApi: Client;
  let strangerApi: Client;
  let strangerToken: string;
  let pdb: Buffer;
  const ids = {
    project: '',
    structure: '',
    target: '',
    relationship: '',
    upload: '',
    job: '',
    export: '',
    import: '',
    team: '',
    token: '',
    member: '',
    owner: '',
    link: '',
  };

  beforeAll(async () => {
    stack = await startStack();
    const owner = await userFactory(stack.ctx);
    ownerApi = client(stack.url, owner.token);
    strangerToken = (await userFactory(stack.ctx)).token;
    strangerApi = client(stack.url, strangerToken);
    pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));

    ids.project = (await ownerApi.post('/v1/projects', { name: 'private', tags: ['kept'] })).body.id;
    const upload = await ownerApi.upload(`/v1/projects/${ids.project}/structures`, { name: '1crn.pdb', content: pdb }, { tags: 'kept' }, { prefer: 'wait=30' });
    expect(upload.status).toBe(201);
    ids.structure = upload.body.structure.id;
    ids.upload = upload.body.upload.id;
    ids.job = upload.body.upload.jobs[0];
    ids.target = await storedStructure(ownerApi, ids.project, 'target.pdb', pdb);
    const link = await ownerApi.post(`/v1/structures/${ids.structure}/relationships`, { type: 'related', targetId: ids.target });
    expect(link.status).toBe(201);
    ids.relationship = link.body.id;
    expect((await putDraft(ownerApi, ids.structure, pdb)).status).toBe(200);
    const exported = await ownerApi.post('/v1/exports', { projectId: ids.project }, { prefer: 'wait=60' });
    expect(exported.status).toBe(200);
    ids.export = exported.body.export.id;
    const form = new FormData();
    form.append('file', new Blob([pdb]), 'again.pdb');
    const imported = await ownerApi.raw(`/v1/projects/${ids.project}/imports`, { method: 'POST', body: form });
    expect(imported.status).toBe(202);
    ids.import = ((await imported.json()) as { import: { id: string } }).import.id;
    ids.owner = owner.id;
    ids.team = (await ownerApi.post('/v1/teams', { name: 'lab' })).body.id;
    ids.token = (await ownerApi.post('/v1/tokens', { name: 'script', scopes: ['read'] })).body.id;
    ids.member = (await ownerApi.get(`/v1/projects/${ids.project}/members`)).body.items[0].id;
    ids.link = (await ownerApi.post(`/v1/structures/${ids.structure}/links`, {})).body.id;
  });
  afterAll(() => stack?.stop());

  /** What the stranger sends to each route with an id: a body the route's schema accepts, so only access can refuse it. */
  function requestFor(method: string, route: string): RequestInit | undefined {
    const json = (body: unknown): RequestInit => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const file = (): RequestInit => {
      const form = new FormData();
      form.append('file', new Blob([pdb]), 'mine.pdb');
      return { body: form };
    };
    const sha256 = 'a'.repeat(64);
    const requests: Record<string, RequestInit> = {
      'GET /v1/projects/{id}': {},
      'PATCH /v1/projects/{id}': json({ name: 'taken over' }),
      'DELETE /v1/projects/{id}': {},
      'POST /v1/projects/{id}/structures': file(),
      'POST /v1/structures/{id}/versions': file(),
      'GET /v1/structures/{id}/versions': {},
      'GET /v1/structures/{id}': {},
      'PATCH /v1/structures/{id}': json({ name: 'taken over' }),
      'DELETE /v1/structures/{id}': {},
      'POST /v1/structures/{id}/restore': {},
      'GET /v1/structures/{id}/versions/{n}': {},
      'PATCH /v1/structures/{id}/versions/{n}': json({ pinned: true }),
      'GET /v1/structures/{id}/download': {},
      'GET /v1/uploads/{id}': {},
      'POST /v1/projects/{id}/imports': json({ pdbIds: ['1CRN'] }),
      'POST /v1/projects/{id}/imports/check': json({ sha256: [sha256] }),
      'POST /v1/projects/{id}/imports/known': json({ sha256: [sha256] }),
      'GET /v1/imports/{id}': {},
      'GET /v1/jobs/{id}': {},
      'GET /v1/jobs/{id}/events': {},
      'PUT /v1/structures/{id}/draft': { headers: { 'content-type': 'application/octet-stream' }, body: pdb },
      'GET /v1/structures/{id}/draft': {},
      'DELETE /v1/structures/{id}/draft': {},
      'POST /v1/structures/{id}/checkpoint': json({}),
      'POST /v1/structures/{id}/rollback': json({ version: 1 }),
      'GET /v1/structures/{id}/diff': {},
      'GET /v1/structures/{id}/metadata': {},
      'PUT /v1/structures/{id}/metadata': json({ stolen: true }),
      'PATCH /v1/structures/{id}/metadata': json({ stolen: true }),
      'DELETE /v1/structures/{id}/metadata': {},
      'GET /v1/projects/{id}/own-metadata': {},
      'PUT /v1/projects/{id}/own-metadata': json({ stolen: true }),
      'PATCH /v1/projects/{id}/own-metadata': json({ stolen: true }),
      'DELETE /v1/projects/{id}/own-metadata': {},
      'GET /v1/projects/{id}/metadata-schema': {},
      'PUT /v1/projects/{id}/metadata-schema': json({ type: 'object', required: ['stolen'] }),
      'DELETE /v1/projects/{id}/metadata-schema': {},
      'GET /v1/projects/{id}/metadata': {},
      'POST /v1/projects/{id}/metadata': json({ structures: [] }),
      'POST /v1/structures/{id}/tags': json({ tags: ['stolen'] }),
      'DELETE /v1/structures/{id}/tags/{tag}': {},
      'POST /v1/projects/{id}/tags/rename': json({ from: 'kept', to: 'stolen' }),
      'DELETE /v1/projects/{id}/tags/{tag}': {},
      'POST /v1/structures/{id}/relationships': json({ type: 'related', targetId: ids.target }),
      'GET /v1/structures/{id}/relationships': {},
      'DELETE /v1/structures/{id}/relationships/{relationshipId}': {},
      'GET /v1/exports/{id}': {},
      'GET /v1/exports/{id}/download': {},
      'DELETE /v1/exports/{id}': {},
      'GET /v1/projects/{id}/members': {},
      'POST /v1/projects/{id}/members': json({ email: 'someone@example.org', role: 'viewer' }),
      'PATCH /v1/projects/{id}/members/{memberId}': json({ role: 'viewer' }),
      'DELETE /v1/projects/{id}/members/{memberId}': {},
      'POST /v1/projects/{id}/leave': {},
      'GET /v1/projects/{id}/audit': {},
      'GET /v1/teams/{id}': {},
      'DELETE /v1/teams/{id}': {},
      'POST /v1/teams/{id}/members': json({ email: 'someone@example.org' }),
      'DELETE /v1/teams/{id}/members/{userId}': {},
      'DELETE /v1/tokens/{id}': {},
      'GET /v1/structures/{id}/download-url': {},
      'POST /v1/structures/{id}/links': json({}),
      'GET /v1/structures/{id}/links': {},
      'DELETE /v1/links/{id}': {},
    };
    const request = requests[`${method.toUpperCase()} ${route}`];
    return request && { ...request, method: method.toUpperCase() };
  }

  /** The owner's id each path names: the kind of thing follows the path's first segment after /v1. */
  function concretePath(route: string): string {
    const kind = route.split('/')[2];
    const id = {
      projects: ids.project,
      structures: ids.structure,
      uploads: ids.upload,
      imports: ids.import,
      jobs: ids.job,
      exports: ids.export,
      teams: ids.team,
      tokens: ids.token,
      links: ids.link,
    }[kind];
    if (!id) throw new Error(`no id of the owner's for ${route}`);
    return route
      .replace('{id}', id)
      .replace('{n}', '1')
      .replace('{tag}', 'kept')
      .replace('{relationshipId}', ids.relationship)
      .replace('{memberId}', ids.member)
      .replace('{userId}', ids.owner);
  }

  it('answers 404 not_found to a stranger on every route whose path names an id, as for an id that does not exist', async () => {
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths)
      // Outside /v1 (share links) the id is the credential itself: test/sharing.links.test.ts covers them.
      .filter(([route]) => route.includes('{id}') && route.startsWith('/v1/') && !route.startsWith('/v1/admin/'))
      .flatMap(([route, operations]) => Object.keys(operations).map((method) => ({ method, route })));
    const uncovered = routes.filter(({ method, route }) => !requestFor(method, route)).map(({ method, route }) => `${method.toUpperCase()} ${route}`);
    expect(uncovered, 'routes with an id that this test does not try').toEqual([]);
    expect(routes.length).toBeGreaterThan(40);

    for (const { method, route } of routes) {
      const request = requestFor(method, route) as RequestInit;
      const response = await fetch(`${stack.url}${concretePath(route)}`, {
        ...request,
        headers: { ...(request.headers as Record<string, string>), authorization: `Bearer ${strangerToken}` },
      });
      const body = (await response.json()) as { error?: { code: string; message: string } };
      expect(response.status, `${method.toUpperCase()} ${route}`).toBe(404);
      expect(body.error?.code, `${method.toUpperCase()} ${route}`).toBe('not_found');
    }
  });

  it('answers 404 to a stranger naming the owner’s ids in a body or a query, and shows nothing of them in lists', async () => {
    const exportProject = await strangerApi.post('/v1/exports', { projectId: ids.project });
    expect(exportProject.status).toBe(404);
    const exportSelection = await strangerApi.post('/v1/exports', { structureIds: [ids.structure] });
    expect(exportSelection.status).toBe(404);
    expect(exportSelection.body.error.details.missing).toEqual([ids.structure]);
    expect((await strangerApi.get(`/v1/tags?project=${ids.project}`)).status).toBe(404);

    const ownProject = (await strangerApi.post('/v1/projects', { name: 'mine' })).body.id;
    const ownStructure = await storedStructure(strangerApi, ownProject, 'mine.pdb', pdb);
    const link = await strangerApi.post(`/v1/structures/${ownStructure}/relationships`, { type: 'related', targetId: ids.structure });
    expect(link.status).toBe(404);
    expect(link.body.error.code).toBe('not_found');

    expect((await strangerApi.get('/v1/projects')).body.items.map((p: { id: string }) => p.id)).toEqual([ownProject]);
    expect((await strangerApi.get(`/v1/structures?project=${ids.project}`)).body.items).toEqual([]);
    expect((await strangerApi.get(`/v1/trash?project=${ids.project}`)).body.items).toEqual([]);
    expect((await strangerApi.get(`/v1/imports?project=${ids.project}`)).body.items).toEqual([]);
    expect((await strangerApi.get('/v1/exports')).body.items).toEqual([]);
    expect((await strangerApi.get(`/v1/search?project=${ids.project}`)).body.total).toBe(0);
    expect((await strangerApi.get('/v1/tags')).body.items).toEqual([]);
    expect((await strangerApi.get('/v1/usage')).body.projects.map((p: { id: string }) => p.id)).not.toContain(ids.project);
  });

  it('leaves everything of the owner as it was', async () => {
    const project = await ownerApi.get(`/v1/projects/${ids.project}`);
    expect(project.body).toMatchObject({ name: 'private', metadata: {}, tags: ['kept'] });
    expect((await ownerApi.get(`/v1/projects/${ids.project}/metadata-schema`)).body.schema).toBeNull();
    const structure = await ownerApi.get(`/v1/structures/${ids.structure}`);
    expect(structure.body).toMatchObject({ name: '1crn', deletedAt: null, tags: ['kept'], metadata: {} });
    expect(structure.body.currentVersion).toMatchObject({ number: 1, pinned: false });
    expect((await ownerApi.get(`/v1/structures/${ids.structure}/versions`)).body.items).toHaveLength(1);
    expect((await ownerApi.get(`/v1/structures/${ids.structure}/draft`, { accept: 'application/json' })).status).toBe(200);
    expect((await ownerApi.get(`/v1/structures/${ids.structure}/relationships`)).body.items.map((r: { id: string }) => r.id)).toEqual([ids.relationship]);
    expect((await ownerApi.get(`/v1/exports/${ids.export}`)).body.state).toBe('completed');
    expect((await ownerApi.get(`/v1/imports/${ids.import}`)).status).toBe(200);
  });
});
