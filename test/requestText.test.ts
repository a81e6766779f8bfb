import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../src/api/openapi.js';
import { MAX_JSON_DEPTH } from '../src/lib/jsonText.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * Text a client sends in a request: a NUL character anywhere (names, descriptions, tags, metadata
 * keys and values at any depth, messages, multipart fields, CSV, query strings) and JSON nested
 * absurdly deep are refused with 400 naming the field, never 500; a JSON body where a file belongs
 * says a file was expected; 405 has the JSON error shape.
 */
const NUL = 'a\u0000b';

/** A JSON value nested `depth` levels deep: {"a": {"a": … 1 …}}. */
const deepJson = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('text in requests', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;
  let structureId: string;
  let pdb: Buffer;

  beforeAll(async () => {
    stack = await startStack();
    // An administrator, so that the admin routes too reach their body check (access is checked first).
    user = await userFactory(stack.ctx, { admin: true });
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'texts' })).body.id;
    pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const stored = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: pdb }, { name: 'crambin' }, { prefer: 'wait=30' });
    expect(stored.status).toBe(201);
    structureId = stored.body.structure.id;
  });
  afterAll(() => stack?.stop());

  const send = async (method: string, url: string, body: string, contentType = 'application/json') => {
    const response = await api.raw(url, { method, headers: { 'content-type': contentType }, body });
    const text = await response.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: response.status, body: json };
  };

  it.each([
    ['project name', 'POST', () => '/v1/projects', { name: NUL }, 'name'],
    ['project description', 'POST', () => '/v1/projects', { name: 'p', description: NUL }, 'description'],
    ['project tag', 'POST', () => '/v1/projects', { name: 'p', tags: ['ok', NUL] }, 'tags[1]'],
    ['metadata value deep down', 'POST', () => '/v1/projects', { name: 'p', metadata: { a: { b: [1, { c: NUL }] } } }, 'metadata.a.b[1].c'],
    ['metadata key', 'POST', () => '/v1/projects', { name: 'p', metadata: { 'k\u0000': 1 } }, 'metadata.k\\u0000'],
    ['structure name', 'PATCH', () => `/v1/structures/${structureId}`, { name: NUL }, 'name'],
    ['structure metadata', 'PUT', () => `/v1/structures/${structureId}/metadata`, { note: NUL }, 'note'],
    ['rollback message', 'POST', () => `/v1/structures/${structureId}/rollback`, { version: 1, message: NUL }, 'message'],
    ['tag rename', 'POST', () => `/v1/projects/${projectId}/tags/rename`, { from: 'x', to: NUL }, 'to'],
    ['metadata schema', 'PUT', () => `/v1/projects/${projectId}/metadata-schema`, { schema: { description: NUL } }, 'schema.description'],
    ['PDB id list', 'POST', () => `/v1/projects/${projectId}/imports`, { pdbIds: [NUL] }, 'pdbIds[0]'],
    [
      'metadata import row',
      'POST',
      () => `/v1/projects/${projectId}/metadata`,
      { structures: [{ name: 'crambin', metadata: { x: NUL } }] },
      'structures[0].metadata.x',
    ],
  ])('refuses a NUL in the %s with 400 naming the field', async (_what, method, url, body, field) => {
    const response = await send(method, url(), JSON.stringify(body));
    expect(response.status).toBe(400);
    expect(response.body.error.message).toContain(field);
    expect(response.body.error.message).toContain('NUL');
    expect((await api.get(`/v1/structures/${structureId}`)).body.name).toBe('crambin');
  });

  it('refuses a NUL in multipart upload fields (name, tags, metadata JSON) and leaves nothing', async () => {
    const before = await leftovers(stack.ctx, user.id);
    const cases: Record<string, string | string[]>[] = [
      { name: NUL },
      { tags: ['ok', NUL] },
      { description: NUL },
      { metadata: JSON.stringify({ deep: { x: NUL } }) },
    ];
    for (const fields of cases) {
      const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'n.pdb', content: pdb }, fields);
      expect(response.status, JSON.stringify(fields)).toBe(400);
      expect(response.body.error.message).toContain('NUL');
    }
    const metadataField = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'n.pdb', content: pdb },
      { metadata: JSON.stringify({ deep: { x: NUL } }) },
    );
    expect(metadataField.body.error.message).toContain('metadata.deep.x');
    expect(await leftovers(stack.ctx, user.id)).toEqual(before);
  });

  it('refuses a NUL in a CSV metadata import and in a query string with 400', async () => {
    const csv = await send('POST', `/v1/projects/${projectId}/metadata`, `name,metadata.note\ncrambin,"x${'\u0000'}y"\n`, 'text/csv');
    expect(csv.status).toBe(400);
    expect(csv.body.error.message).toMatch(/NUL.*line 2/);
    const search = await api.get(`/v1/search?q=${encodeURIComponent(NUL)}`);
    expect(search.status).toBe(400);
    expect(search.body.error.message).toContain('q');
    const list = await api.get(`/v1/structures?q=${encodeURIComponent(NUL)}`);
    expect(list.status).toBe(400);
  });

  it(`refuses JSON nested deeper than ${MAX_JSON_DEPTH} levels with 400, in bodies and in the metadata field`, async () => {
    for (const depth of [MAX_JSON_DEPTH + 1, 10_000, 100_000]) {
      const body = `{"name":"deep","metadata":${deepJson(depth)}}`;
      const response = await send('POST', '/v1/projects', body);
      expect(response.status, `depth ${depth}`).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'json_too_deep', message: expect.stringContaining(`at most ${MAX_JSON_DEPTH}`) });
      const patched = await send('PUT', `/v1/structures/${structureId}/metadata`, deepJson(depth));
      expect(patched.status).toBe(400);
    }
    const upload = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'n.pdb', content: pdb }, { metadata: deepJson(5000) });
    expect(upload.status).toBe(400);
    expect(upload.body.error.code).toBe('json_too_deep');
    // Deep but within the limit is fine.
    const fine = await send('POST', '/v1/projects', `{"name":"deep enough","metadata":${deepJson(MAX_JSON_DEPTH - 1)}}`);
    expect(fine.status).toBe(201);
  });

  it('answers a JSON body sent to the upload endpoints with 415 saying a file was expected', async () => {
    const before = await leftovers(stack.ctx, user.id);
    for (const url of [`/v1/projects/${projectId}/structures`, `/v1/structures/${structureId}/versions`]) {
      const json = await send('POST', url, JSON.stringify({ name: 'x', file: 'ATOM ...' }));
      expect(json.status).toBe(415);
      expect(json.body.error.code).toBe('file_expected');
      expect(json.body.error.message).toMatch(/multipart\/form-data field "file" or as the raw request body/);
      // A real structure sent raw with a JSON content type: the same clear answer, not "the file is empty".
      const mislabelled = await send('POST', url, pdb.toString('utf8'));
      expect(mislabelled.status).toBe(415);
      expect(mislabelled.body.error.code).toBe('file_expected');
    }
    const draft = await send('PUT', `/v1/structures/${structureId}/draft`, JSON.stringify({ file: 'x' }));
    expect(draft.status).toBe(415);
    expect(await leftovers(stack.ctx, user.id)).toEqual(before);
  });

  it('answers 405 with the JSON error shape and the Allow header', async () => {
    const response = await api.raw(`/v1/projects/${projectId}/metadata-schema`, { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toMatch(/PUT/);
    const body = (await response.json()) as any;
    expect(body.error).toMatchObject({ code: 'method_not_allowed', message: expect.stringMatching(/does not answer POST; it answers .*PUT/) });
  });

  it('takes the metadata schema on PUT as {"schema": …} (what GET answers) or bare', async () => {
    const schema = { type: 'object', properties: { organism: { type: 'string' } } };
    const wrapped = await send('PUT', `/v1/projects/${projectId}/metadata-schema`, JSON.stringify({ schema }));
    expect(wrapped.status).toBe(200);
    expect(wrapped.body).toEqual({ schema });
    const read = await api.get(`/v1/projects/${projectId}/metadata-schema`);
    expect(read.body).toEqual({ schema });
    // What GET answered goes back as it is.
    expect((await send('PUT', `/v1/projects/${projectId}/metadata-schema`, JSON.stringify(read.body))).body).toEqual({ schema });
    const bare = { ...schema, required: [] };
    const sentBare = await send('PUT', `/v1/projects/${projectId}/metadata-schema`, JSON.stringify(bare));
    expect(sentBare.status).toBe(200);
    expect((await api.get(`/v1/projects/${projectId}/metadata-schema`)).body).toEqual({ schema: bare });
    expect((await api.delete(`/v1/projects/${projectId}/metadata-schema`)).status).toBe(204);
  });

  it.each([
    ['a NUL', 'bad\u0000name.pdb'],
    ['CR/LF', 'bad\r\nname.pdb'],
    ['a lone LF', 'bad\nname.pdb'],
  ])('a multipart import whose file name holds %s is refused with 400 and leaves no import behind', async (_what, filename) => {
    const boundary = 'molvault-test-boundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="ok.pdb"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      pdb,
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      pdb,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const other = await userFactory(stack.ctx);
    const otherApi = client(stack.url, other.token);
    const project = (await otherApi.post('/v1/projects', { name: 'names' })).body.id;
    const response = await otherApi.raw(`/v1/projects/${project}/imports`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    const answer = (await response.json()) as any;
    expect(response.status).toBe(400);
    expect(answer.error).toMatchObject({ code: 'invalid_multipart', message: expect.stringMatching(/file name/) });
    // Refused: nothing is left, not even a failed import, and the good file before it is not kept either.
    expect((await otherApi.get('/v1/imports')).body.items).toEqual([]);
    expect(await leftovers(stack.ctx, other.id)).toMatchObject({ structures: 0, versions: 0, stagingEntries: 0 });
    expect(await stack.ctx.orm.em.fork().execute('select id from import_batches where owner_id = ?', [other.id])).toEqual([]);
  });

  describe('every route of the OpenAPI document', () => {
    /** A request body shaped by the route's schema, with a NUL in every string it holds. */
    function sample(schema: any, depth = 0): unknown {
      if (!schema || depth > 8) return NUL;
      if (schema.enum) return schema.enum[0];
      const choice = schema.anyOf ?? schema.oneOf;
      if (choice) return sample(choice[0], depth + 1);
      switch (schema.type) {
        case 'object': {
          const out: Record<string, unknown> = { [`extra${'\u0000'}key`]: NUL };
          for (const [name, property] of Object.entries(schema.properties ?? {})) out[name] = sample(property, depth + 1);
          return out;
        }
        case 'array':
          return [sample(schema.items, depth + 1)];
        case 'number':
        case 'integer':
          return 1;
        case 'boolean':
          return true;
        default:
          return NUL;
      }
    }
    const concrete = (routePath: string) =>
      routePath
        .replace('/v1/projects/{id}', `/v1/projects/${projectId}`)
        .replace('/v1/structures/{id}', `/v1/structures/${structureId}`)
        .replace(/\{(id|[A-Za-z]+Id)\}/g, '00000000-0000-4000-8000-000000000000')
        .replace(/\{[^}]+\}/g, '1');

    it('refuses a NUL in every JSON body with 400 and never answers 5xx to one anywhere', async () => {
      const document = openApiDocument() as { paths: Record<string, Record<string, any>> };
      let jsonRoutes = 0;
      let otherRoutes = 0;
      for (const [routePath, operations] of Object.entries(document.paths)) {
        for (const [method, operation] of Object.entries(operations)) {
          if (method === 'get' || method === 'delete') {
            const response = await api.raw(`${concrete(routePath)}?q=${encodeURIComponent(NUL)}&name=${encodeURIComponent(NUL)}`, {
              method: method.toUpperCase(),
            });
            await response.arrayBuffer();
            expect(response.status, `${method} ${routePath}`).toBeLessThan(500);
            continue;
          }
          const schema = operation.requestBody?.content?.['application/json']?.schema;
          const response = await send(method.toUpperCase(), concrete(routePath), JSON.stringify(schema ? sample(schema) : { name: NUL, metadata: { k: NUL } }));
          expect(response.status, `${method} ${routePath}: ${JSON.stringify(response.body)}`).toBeLessThan(500);
          if (schema) {
            jsonRoutes++;
            expect(response.status, `${method} ${routePath}: ${JSON.stringify(response.body)}`).toBe(400);
            expect(response.body.error.message, `${method} ${routePath}`).toContain('NUL');
          } else otherRoutes++;
        }
      }
      expect(jsonRoutes).toBeGreaterThan(10);
      expect(otherRoutes).toBeGreaterThan(3);
    });
  });
});
