import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * Sharing end to end on the Postgres backend: roles and their limits, teams, scoped tokens, who
 * pays, and the audit log (each audited action exactly one entry, with the right actor; no route
 * changes an entry).
 */
describe('sharing: members, teams, tokens, quota and audit', () => {
  let stack: Stack;
  let pdb: Buffer;
  let owner: TestUser;
  let editor: TestUser;
  let viewer: TestUser;
  let ownerApi: Client;
  let editorApi: Client;
  let viewerApi: Client;
  let projectId = '';

  const auditOf = async (query: string) => (await ownerApi.get(`/v1/projects/${projectId}/audit?${query}`)).body.items as Record<string, any>[];

  beforeAll(async () => {
    stack = await startStack();
    pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    owner = await userFactory(stack.ctx);
    editor = await userFactory(stack.ctx);
    viewer = await userFactory(stack.ctx);
    ownerApi = client(stack.url, owner.token);
    editorApi = client(stack.url, editor.token);
    viewerApi = client(stack.url, viewer.token);
    projectId = (await ownerApi.post('/v1/projects', { name: 'lab' })).body.id;
  });
  afterAll(() => stack?.stop());

  it('gives roles, refuses what a role is too low for with 403 naming the role, and records each change once', async () => {
    const added = await ownerApi.post(`/v1/projects/${projectId}/members`, { email: editor.email, role: 'editor' });
    expect(added.status).toBe(201);
    const viewerMember = await ownerApi.post(`/v1/projects/${projectId}/members`, { email: viewer.email, role: 'editor' });
    expect((await ownerApi.patch(`/v1/projects/${projectId}/members/${viewerMember.body.id}`, { role: 'viewer' })).body.role).toBe('viewer');
    expect((await ownerApi.post(`/v1/projects/${projectId}/members`, { email: 'nobody@example.org', role: 'viewer' })).status).toBe(404);
    // Added twice: 409 with a sentence, not a 500, and the first membership is untouched.
    const twice = await ownerApi.post(`/v1/projects/${projectId}/members`, { email: editor.email, role: 'viewer' });
    expect(twice.status, JSON.stringify(twice.body)).toBe(409);
    expect(twice.body.error.message).toMatch(/member of this project already/);

    const sent = await editorApi.upload(`/v1/projects/${projectId}/structures`, { name: 'by-editor.pdb', content: pdb }, {}, { prefer: 'wait=30' });
    // A loaded machine may answer 202 before the pipeline ends: then wait for it.
    expect((await waitForUpload(editorApi, sent.body.upload.id, 180_000)).state).toBe('stored');
    const structureId = sent.body.structure.id as string;
    expect((await viewerApi.get(`/v1/structures/${structureId}`)).status).toBe(200);
    const refused = await viewerApi.patch(`/v1/structures/${structureId}`, { description: 'mine now' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/editor role/);
    expect((await editorApi.delete(`/v1/structures/${structureId}?purge=true`)).status).toBe(403);

    // The owner of record cannot be demoted or removed, and is the project's payer.
    const members = (await ownerApi.get(`/v1/projects/${projectId}/members`)).body.items as { id: string; ownerOfRecord: boolean }[];
    const ownerMember = members.find((m) => m.ownerOfRecord) as { id: string };
    expect((await ownerApi.patch(`/v1/projects/${projectId}/members/${ownerMember.id}`, { role: 'editor' })).status).toBe(409);
    expect((await ownerApi.delete(`/v1/projects/${projectId}/members/${ownerMember.id}`)).status).toBe(409);
    expect((await ownerApi.get('/v1/usage')).body.usedBytes).toBeGreaterThan(0);
    expect((await editorApi.get('/v1/usage')).body.usedBytes).toBe(0);

    const adds = await auditOf('action=project.member.add');
    expect(adds).toHaveLength(2);
    expect(adds.every((e) => e.actor.userId === owner.id)).toBe(true);
    expect(await auditOf('action=project.member.role')).toHaveLength(1);

    expect((await editorApi.delete(`/v1/structures/${structureId}`)).status).toBe(204);
    expect((await editorApi.post(`/v1/structures/${structureId}/restore`)).status).toBe(200);
    const deleted = await auditOf('action=structure.delete');
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ actor: { userId: editor.id }, target: { type: 'structure', id: structureId } });
    expect(deleted[0].actor.tokenId).toEqual(expect.any(String));
    expect(await auditOf('action=structure.restore')).toHaveLength(1);
    expect((await ownerApi.delete(`/v1/structures/${structureId}?purge=true`)).status).toBe(204);
    expect((await auditOf(`action=structure.purge&target=${structureId}`)).map((e) => e.actor.userId)).toEqual([owner.id]);

    expect((await viewerApi.get(`/v1/projects/${projectId}/audit`)).status).toBe(403);
    expect((await viewerApi.post(`/v1/projects/${projectId}/leave`)).status).toBe(204);
    expect((await viewerApi.get(`/v1/projects/${projectId}`)).status).toBe(404);
    expect((await auditOf('action=project.member.remove')).map((e) => e.actor.userId)).toEqual([viewer.id]);
  });

  it('charges an editor’s upload to the owner of record, and names them when their quota is full', async () => {
    const poor = await userFactory(stack.ctx, { quotaBytes: 1000 });
    const poorApi = client(stack.url, poor.token);
    const poorProject = (await poorApi.post('/v1/projects', { name: 'tiny' })).body.id;
    expect((await poorApi.post(`/v1/projects/${poorProject}/members`, { email: editor.email, role: 'editor' })).status).toBe(201);
    const refused = await editorApi.upload(`/v1/projects/${poorProject}/structures`, { name: 'big.pdb', content: pdb }, {}, { prefer: 'wait=30' });
    expect(refused.status).toBe(507);
    expect(refused.body.error.message).toContain(poor.email);
    expect(refused.body.error.details.chargedTo.id).toBe(poor.id);
  });

  it('shares through teams, and transfers a project to another owner', async () => {
    const teamMember = await userFactory(stack.ctx);
    const team = await ownerApi.post('/v1/teams', { name: 'crystallography' });
    expect(team.status).toBe(201);
    expect((await ownerApi.post(`/v1/teams/${team.body.id}/members`, { email: teamMember.email })).status).toBe(201);
    const memberApi = client(stack.url, teamMember.token);
    expect((await memberApi.get(`/v1/projects/${projectId}`)).status).toBe(404);
    expect((await ownerApi.post(`/v1/projects/${projectId}/members`, { teamId: team.body.id, role: 'viewer' })).status).toBe(201);
    expect((await memberApi.get(`/v1/projects/${projectId}`)).status).toBe(200);
    expect((await memberApi.post(`/v1/teams/${team.body.id}/members`, { email: viewer.email })).status).toBe(403);
    expect((await memberApi.delete(`/v1/teams/${team.body.id}/members/${teamMember.id}`)).status).toBe(204);
    expect((await memberApi.get(`/v1/projects/${projectId}`)).status).toBe(404);

    const teamEvents = (await ownerApi.get(`/v1/admin/audit?target=${team.body.id}`)).status;
    expect(teamEvents).toBe(403);

    // Transfer: only to an owner member.
    expect((await ownerApi.patch(`/v1/projects/${projectId}`, { ownerId: editor.id })).status).toBe(422);
    const members = (await ownerApi.get(`/v1/projects/${projectId}/members`)).body.items as { id: string; user: { id: string } | null }[];
    const editorMember = members.find((m) => m.user?.id === editor.id) as { id: string };
    expect((await ownerApi.patch(`/v1/projects/${projectId}/members/${editorMember.id}`, { role: 'owner' })).status).toBe(200);
    const moved = await ownerApi.patch(`/v1/projects/${projectId}`, { ownerId: editor.id });
    expect(moved.status).toBe(200);
    expect(moved.body.ownerId).toBe(editor.id);
    expect((await auditOf('action=project.owner.transfer')).map((e) => e.actor.userId)).toEqual([owner.id]);
  });

  it('limits tokens by scope and project, lists them without secrets, records creation and revocation', async () => {
    const other = (await ownerApi.post('/v1/projects', { name: 'elsewhere' })).body.id;
    const made = await ownerApi.post('/v1/tokens', { name: 'script', scopes: ['read'], projectIds: [other], expiresIn: '1d' });
    expect(made.status).toBe(201);
    expect(made.body.token).toMatch(/^mv_/);
    const scriptApi = client(stack.url, made.body.token);
    expect((await scriptApi.get(`/v1/projects/${other}`)).status).toBe(200);
    expect((await scriptApi.get(`/v1/projects/${projectId}`)).status).toBe(404);
    expect((await scriptApi.patch(`/v1/projects/${other}`, { description: 'x' })).status).toBe(403);
    expect((await scriptApi.post('/v1/tokens', { name: 'more', scopes: ['read', 'write'] })).status).toBe(403);
    expect((await scriptApi.get('/v1/projects')).body.items.map((p: { id: string }) => p.id)).toEqual([other]);

    const listed = await ownerApi.get('/v1/tokens');
    expect(JSON.stringify(listed.body)).not.toContain(made.body.token);
    expect(listed.body.items.find((t: { id: string }) => t.id === made.body.id)).toMatchObject({ scopes: ['read'], projectIds: [other] });
    expect((await ownerApi.delete(`/v1/tokens/${made.body.id}`)).status).toBe(204);
    expect((await scriptApi.get(`/v1/projects/${other}`)).status).toBe(401);

    const admin = await userFactory(stack.ctx, { admin: true });
    const adminApi = client(stack.url, admin.token);
    const tokenEvents = (await adminApi.get(`/v1/admin/audit?target=${made.body.id}`)).body.items as Record<string, any>[];
    expect(tokenEvents.map((e) => e.action).sort()).toEqual(['token.create', 'token.revoke']);
    expect(tokenEvents.every((e) => e.actor.userId === owner.id)).toBe(true);
    const scopedAdmin = await adminApi.post('/v1/tokens', { name: 'scoped', scopes: ['read', 'write'] });
    expect((await client(stack.url, scopedAdmin.body.token).get('/v1/admin/audit')).status).toBe(403);
  });

  it('offers no way to change or delete an audit entry', async () => {
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const auditPaths = Object.entries(doc.paths).filter(([route]) => route.includes('/audit'));
    expect(auditPaths.length).toBe(2);
    for (const [, operations] of auditPaths) expect(Object.keys(operations)).toEqual(['get']);
    const [entry] = await auditOf('limit=1');
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const response = await ownerApi.raw(`/v1/projects/${projectId}/audit/${entry.id}`, { method });
      expect([404, 405]).toContain(response.status);
    }
    await expect(stack.ctx.orm.em.fork().execute(`update audit_events set action = 'forged' where id = ?`, [entry.id])).rejects.toThrow();
  });
});
