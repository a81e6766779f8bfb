import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

const METADATA = {
  alpha: { organism: 'Crambe hispanica', resolution: 1.5, refined: true, chains: ['A'], source: { lab: 'X, "Y" & Z', year: 2026 } },
  beta: { organism: 'E. coli', code: '42', note: 'line one\nline two', resolution: 2 },
  gamma: {},
};

describe('metadata, tags and relationships', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;
  const ids: Record<string, string> = {};
  let pdb: Buffer;

  beforeAll(async () => {
    stack = await startStack();
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'annotated' })).body.id;
    pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    for (const [name, metadata] of Object.entries(METADATA)) {
      const response = await api.upload(
        `/v1/projects/${projectId}/structures`,
        { name: `${name}.pdb`, content: pdb },
        { name, metadata: JSON.stringify(metadata), tags: name === 'gamma' ? ['apo'] : ['xray', 'holo'] },
        { prefer: 'wait=30' },
      );
      expect(response.status).toBe(201);
      ids[name] = response.body.structure.id;
    }
  });
  afterAll(() => stack?.stop());

  const exportJson = async () => (await api.get(`/v1/projects/${projectId}/metadata?format=json`)).body;
  const exportCsv = async () => (await api.raw(`/v1/projects/${projectId}/metadata?format=csv`)).text();
  const importCsv = async (csv: string) => {
    const response = await api.raw(`/v1/projects/${projectId}/metadata`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
    return { status: response.status, body: (await response.json()) as any };
  };
  const clearAll = async () => {
    for (const id of Object.values(ids)) expect((await api.delete(`/v1/structures/${id}/metadata`)).status).toBe(204);
  };

  it('round-trips a project through CSV, keeping JSON types', async () => {
    const original = await exportJson();
    expect(original.structures.map((s: { name: string }) => s.name)).toEqual(['alpha', 'beta', 'gamma']);
    const csv = await exportCsv();
    const [header, ...rows] = parseCsv(csv) as string[][];
    expect(header).toEqual([
      'id',
      'name',
      'description',
      'tags',
      'metadata.chains',
      'metadata.code',
      'metadata.note',
      'metadata.organism',
      'metadata.refined',
      'metadata.resolution',
      'metadata.source',
    ]);
    expect(rows[1]).toContain('"42"'); // the text "42" stays text
    await clearAll();
    expect((await exportJson()).structures.every((s: { metadata: object }) => Object.keys(s.metadata).length === 0)).toBe(true);
    const imported = await importCsv(csv);
    expect(imported.status).toBe(200);
    expect(imported.body).toEqual({ rows: 3, updated: 2, unchanged: 1 });
    expect(await exportJson()).toEqual(original);
    expect((await api.get(`/v1/structures/${ids.beta}`)).body.metadata).toEqual(METADATA.beta);
  });

  it('round-trips a project through JSON', async () => {
    const original = await exportJson();
    await clearAll();
    const imported = await api.post(`/v1/projects/${projectId}/metadata`, original);
    expect(imported.status).toBe(200);
    expect(await exportJson()).toEqual(original);
  });

  it('applies nothing when one row is invalid, and names the row and the reason', async () => {
    const before = await exportJson();
    const csv = [
      'name,metadata.organism',
      'alpha,Changed organism',
      'beta,Also changed',
      'delta,No such structure',
      `${'x'.repeat(3)},Another missing one`,
    ].join('\n');
    const response = await importCsv(csv);
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe('import_invalid');
    expect(response.body.error.message).toContain('row 4');
    expect(response.body.error.details.rows).toEqual([
      { row: 4, reason: 'no structure named "delta" in this project' },
      { row: 5, reason: 'no structure named "xxx" in this project' },
    ]);
    expect(await exportJson()).toEqual(before);

    const json = await api.post(`/v1/projects/${projectId}/metadata`, {
      structures: [
        { id: ids.alpha, metadata: { organism: 'changed' } },
        { id: ids.alpha, tags: ['dup'] },
        { name: 'beta', metadata: [1] },
      ],
    });
    expect(json.status).toBe(422);
    expect(json.body.error.details.rows).toEqual([
      { row: 2, reason: 'row 1 already changes this structure (alpha)' },
      { row: 3, reason: 'metadata must be a JSON object' },
    ]);
    expect(await exportJson()).toEqual(before);
  });

  it('merges with PATCH (null removes a key) and replaces with PUT', async () => {
    const patched = await api.patch(`/v1/structures/${ids.gamma}/metadata`, { temperature: 100, source: { lab: 'A' } });
    expect(patched.body).toEqual({ temperature: 100, source: { lab: 'A' } });
    const merged = await api.patch(`/v1/structures/${ids.gamma}/metadata`, { temperature: null, source: { year: 2025 } });
    expect(merged.body).toEqual({ source: { lab: 'A', year: 2025 } });
    const replaced = await api.raw(`/v1/structures/${ids.gamma}/metadata`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ only: 'this' }),
    });
    expect(await replaced.json()).toEqual({ only: 'this' });
    expect((await api.patch(`/v1/projects/${projectId}/own-metadata`, { grant: 'ERC-1' })).body).toEqual({ grant: 'ERC-1' });
    expect((await api.get(`/v1/projects/${projectId}`)).body.metadata).toEqual({ grant: 'ERC-1' });
  });

  it("refuses metadata that does not fit the project's schema with 422", async () => {
    const schema = {
      type: 'object',
      properties: { resolution: { type: 'number', exclusiveMinimum: 0 }, organism: { type: 'string' }, collected: { type: 'string', format: 'date' } },
    };
    expect((await api.raw(`/v1/projects/${projectId}/metadata-schema`, put({ type: 'object', properties: { organism: { type: 'number' } } }))).status).toBe(
      409,
    );
    expect((await api.raw(`/v1/projects/${projectId}/metadata-schema`, put({ type: 'objekt' }))).status).toBe(400);
    expect((await api.raw(`/v1/projects/${projectId}/metadata-schema`, put(schema))).status).toBe(200);

    const patch = await api.patch(`/v1/structures/${ids.alpha}/metadata`, { resolution: 'high' });
    expect(patch.status).toBe(422);
    expect(patch.body.error).toMatchObject({ code: 'metadata_schema_violation', message: expect.stringContaining('resolution must be number') });
    expect(patch.body.error.details.problems).toEqual([{ path: '/resolution', message: 'resolution must be number' }]);
    expect((await api.patch(`/v1/structures/${ids.alpha}`, { metadata: { resolution: -1 } })).status).toBe(422);
    const badDate = await api.patch(`/v1/structures/${ids.alpha}/metadata`, { collected: 'last Tuesday' });
    expect(badDate.body.error.details.problems).toEqual([{ path: '/collected', message: 'collected must match format "date"' }]);
    expect((await api.patch(`/v1/structures/${ids.alpha}/metadata`, { collected: '2026-03-01' })).status).toBe(200);
    expect((await api.get(`/v1/structures/${ids.alpha}`)).body.metadata.resolution).toBe(1.5);

    const upload = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'bad.pdb', content: pdb },
      { metadata: JSON.stringify({ resolution: 'bad' }) },
      { prefer: 'wait=30' },
    );
    expect(upload.status).toBe(422);
    expect(upload.body.error.code).toBe('metadata_schema_violation');
    expect((await leftovers(stack.ctx, user.id)).stagingEntries).toBe(0);

    const imported = await importCsv(`id,metadata.resolution\n${ids.beta},"""fine"""\n`);
    expect(imported.status).toBe(422);
    expect(imported.body.error.details.rows).toEqual([{ row: 2, reason: expect.stringContaining('resolution must be number') }]);

    const strict = (await api.post('/v1/projects', { name: 'strict' })).body.id;
    expect((await api.raw(`/v1/projects/${strict}/metadata-schema`, put({ type: 'object', required: ['organism'] }))).status).toBe(200);
    const bare = await api.upload(`/v1/projects/${strict}/structures`, { name: 'bare.pdb', content: pdb }, {}, { prefer: 'wait=30' });
    expect(bare.status).toBe(422);
    expect(bare.body.error.message).toContain("must have required property 'organism'");
    const described = await api.upload(
      `/v1/projects/${strict}/structures`,
      { name: 'described.pdb', content: pdb },
      { metadata: JSON.stringify({ organism: 'Crambe' }) },
      { prefer: 'wait=30' },
    );
    expect(described.status).toBe(201);
    expect((await api.delete(`/v1/structures/${described.body.structure.id}/metadata`)).status).toBe(422);

    expect((await api.delete(`/v1/projects/${projectId}/metadata-schema`)).status).toBe(204);
    expect((await api.patch(`/v1/structures/${ids.alpha}/metadata`, { resolution: 'high' })).status).toBe(200);
  });

  it('renames and deletes tags across a project, and counts them without the trash', async () => {
    const counts = async (query = '') => (await api.get(`/v1/tags${query}`)).body.items;
    expect(await counts(`?project=${projectId}`)).toEqual([
      { tag: 'holo', count: 2 },
      { tag: 'xray', count: 2 },
      { tag: 'apo', count: 1 },
    ]);
    expect((await api.post(`/v1/structures/${ids.gamma}/tags`, { tags: ['xray', 'cryo'] })).body.tags).toEqual(['apo', 'xray', 'cryo']);
    expect((await api.delete(`/v1/structures/${ids.gamma}/tags/cryo`)).body.tags).toEqual(['apo', 'xray']);

    const renamed = await api.post(`/v1/projects/${projectId}/tags/rename`, { from: 'xray', to: 'x-ray' });
    expect(renamed.body).toEqual({ structures: 3 });
    // Merging into an existing tag keeps it once.
    expect((await api.post(`/v1/projects/${projectId}/tags/rename`, { from: 'holo', to: 'x-ray' })).body).toEqual({ structures: 2 });
    expect((await api.get(`/v1/structures/${ids.alpha}`)).body.tags).toEqual(['x-ray']);

    expect((await api.delete(`/v1/structures/${ids.beta}`)).status).toBe(204); // to the trash
    expect(await counts(`?project=${projectId}`)).toEqual([
      { tag: 'x-ray', count: 2 },
      { tag: 'apo', count: 1 },
    ]);
    const other = (await api.post('/v1/projects', { name: 'other' })).body.id;
    expect(await counts(`?project=${other}`)).toEqual([]);
    expect((await api.delete(`/v1/projects/${projectId}/tags/apo`)).body).toEqual({ structures: 1 });
    expect(await counts()).toEqual([{ tag: 'x-ray', count: 2 }]);

    // Search follows the rename once the index jobs ran.
    const deadline = Date.now() + 20_000;
    let found: string[] = [];
    while (Date.now() < deadline) {
      found = (await api.get(`/v1/search?tag=x-ray&project=${projectId}`)).body.items.map((i: { structure: { id: string } }) => i.structure.id);
      if (found.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(found.sort()).toEqual([ids.alpha, ids.gamma].sort());
    expect((await api.post(`/v1/structures/${ids.beta}/restore`)).status).toBe(200);
  });

  it('links structures of one owner, never a structure to itself or to a stranger', async () => {
    const created = await api.post(`/v1/structures/${ids.beta}/relationships`, { type: 'derived-from', targetId: ids.alpha });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ type: 'derived-from', sourceId: ids.beta, targetId: ids.alpha, direction: 'outgoing' });
    expect((await api.post(`/v1/structures/${ids.beta}/relationships`, { type: 'derived-from', targetId: ids.alpha })).status).toBe(409);
    expect((await api.post(`/v1/structures/${ids.beta}/relationships`, { type: 'related', targetId: ids.beta })).status).toBe(422);
    const stranger = await userFactory(stack.ctx);
    const strangerApi = client(stack.url, stranger.token);
    const strangerProject = (await strangerApi.post('/v1/projects', { name: 'theirs' })).body.id;
    const theirs = await strangerApi.upload(`/v1/projects/${strangerProject}/structures`, { name: 't.pdb', content: pdb }, {}, { prefer: 'wait=30' });
    expect((await api.post(`/v1/structures/${ids.beta}/relationships`, { type: 'related', targetId: theirs.body.structure.id })).status).toBe(404);
    expect((await strangerApi.get(`/v1/structures/${ids.beta}/relationships`)).status).toBe(404);

    const incoming = await api.get(`/v1/structures/${ids.alpha}/relationships`);
    expect(incoming.body.items).toEqual([expect.objectContaining({ id: created.body.id, direction: 'incoming' })]);
    expect((await api.delete(`/v1/structures/${ids.alpha}/relationships/${created.body.id}`)).status).toBe(204);
    expect((await api.get(`/v1/structures/${ids.beta}/relationships`)).body.items).toEqual([]);
  });

  it('documents the new routes in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/v1/structures/{id}/draft']).sort()).toEqual(['delete', 'get', 'put']);
    expect(Object.keys(doc.paths['/v1/structures/{id}/metadata']).sort()).toEqual(['delete', 'get', 'patch', 'put']);
    for (const route of [
      '/v1/structures/{id}/checkpoint',
      '/v1/projects/{id}/metadata',
      '/v1/projects/{id}/metadata-schema',
      '/v1/tags',
      '/v1/projects/{id}/tags/rename',
      '/v1/structures/{id}/relationships',
    ]) {
      expect(Object.keys(doc.paths)).toContain(route);
    }
  });
});

function put(body: unknown): RequestInit {
  return { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
