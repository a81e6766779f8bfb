import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const hasBzip2 = (() => {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('the spine: upload → stored → searchable → downloadable', () => {
  let stack: Stack;
  let api: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack();
    const user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    const project = await api.post('/v1/projects', { name: 'crambin studies', tags: ['plants'] });
    expect(project.status).toBe(201);
    projectId = project.body.id;
  });
  afterAll(() => stack?.stop());

  it('stores a PDB file with its summary when asked to wait', async () => {
    const bytes = await fixture('ngl_1crn.pdb');
    const response = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: '1crn.pdb', content: bytes },
      { name: 'Crambin', tags: ['screening-2026', 'plant protein'], metadata: JSON.stringify({ organism: 'Crambe hispanica' }) },
      { prefer: 'wait=30' },
    );
    expect(response.status).toBe(201);
    const { structure, upload } = response.body;
    expect(upload.state).toBe('stored');
    expect(response.headers.get('location')).toBe(`/v1/structures/${structure.id}`);
    expect(structure).toMatchObject({
      name: 'Crambin',
      kind: 'macromolecule',
      tags: ['screening-2026', 'plant protein'],
      metadata: { organism: 'Crambe hispanica' },
    });
    expect(structure.currentVersion).toMatchObject({ number: 1, format: 'pdb', size: bytes.length, sha256: sha256(bytes), filename: '1crn.pdb' });
    expect(structure.currentVersion.summary).toMatchObject({
      atoms: 327,
      models: 1,
      chains: 1,
      residues: 46,
      pdbId: '1CRN',
      method: 'X-RAY DIFFRACTION',
      resolution: 1.5,
    });
    expect(structure.currentVersion.summary.title).toMatch(/CRAMBIN/i);
  });

  it('stores an mmCIF file through 202 and polling', async () => {
    const bytes = await fixture('ngl_1CRN.cif');
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1CRN.cif', content: bytes }, { name: 'crambin mmcif' });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe(`/v1/uploads/${response.body.upload.id}`);
    const upload = await waitForUpload(api, response.body.upload.id);
    expect(upload).toMatchObject({ state: 'stored', version: 1, format: 'cif', structureId: response.body.structure.id });
    const structure = await api.get(`/v1/structures/${upload.structureId}`);
    expect(structure.status).toBe(200);
    expect(structure.body.currentVersion.summary).toMatchObject({ atoms: 327, models: 1, residues: 46, method: 'X-RAY DIFFRACTION', resolution: 1.5 });
  });

  it('unwraps a .gz upload, keeps the uncompressed bytes and serves them', async () => {
    const gz = await fixture('ngl_1CRN.cif.gz');
    const plain = await fixture('ngl_1CRN.cif');
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1CRN.cif.gz', content: gz }, {}, { prefer: 'wait=30' });
    expect(response.status).toBe(201);
    const version = response.body.structure.currentVersion;
    expect(version).toMatchObject({ format: 'cif', sha256: sha256(plain), size: plain.length });
    expect(response.body.upload.compression).toBe('gzip');
    expect(response.body.structure.name).toBe('1CRN');
    const download = await api.raw(`/v1/structures/${response.body.structure.id}/download`);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(plain)).toBe(true);
    expect(download.headers.get('content-disposition')).toContain('1CRN.cif');
  });

  it.skipIf(!hasBzip2)('unwraps a .bz2 upload (skipped when no bzip2 tool is installed)', async () => {
    const plain = await fixture('ngl_1crn.pdb');
    const compressed = execFileSync('bzip2', ['-c'], { input: plain });
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb.bz2', content: compressed }, {}, { prefer: 'wait=30' });
    expect(response.status).toBe(201);
    expect(response.body.upload.compression).toBe('bzip2');
    expect(response.body.structure.currentVersion).toMatchObject({ format: 'pdb', sha256: sha256(plain), size: plain.length });
  });

  it('accepts a raw body upload with its fields in the query string', async () => {
    const bytes = await fixture('ngl_1CRN.cif');
    const response = await api.raw(`/v1/projects/${projectId}/structures?filename=raw-1crn.cif&name=raw%20crambin&tags=raw,cif`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', prefer: 'wait=30' },
      body: bytes,
    });
    expect(response.status).toBe(201);
    const body = (await response.json()) as any;
    expect(body.structure).toMatchObject({ name: 'raw crambin', tags: ['raw', 'cif'] });
    expect(body.structure.currentVersion).toMatchObject({ filename: 'raw-1crn.cif', format: 'cif', sha256: sha256(bytes) });
  });

  it('keeps versions, lists them, and serves each byte for byte with ETag, Content-Length and Range', async () => {
    const v1 = await fixture('ngl_1crn.pdb');
    const v2 = Buffer.from(v1.toString('latin1').replace(/^TITLE {5}.*$/m, 'TITLE     CRAMBIN, REFINED AGAIN'), 'latin1');
    const first = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'crn.pdb', content: v1 },
      { name: 'versioned crambin' },
      { prefer: 'wait=30' },
    );
    const id = first.body.structure.id;
    const second = await api.upload(`/v1/structures/${id}/versions`, { name: 'crn-v2.pdb', content: v2 }, { message: 'refined' }, { prefer: 'wait=30' });
    expect(second.status).toBe(201);
    expect(second.body.structure.currentVersion).toMatchObject({ number: 2, message: 'refined', filename: 'crn-v2.pdb' });

    const versions = await api.get(`/v1/structures/${id}/versions`);
    expect(versions.body.items.map((v: { number: number }) => v.number)).toEqual([2, 1]);
    const one = await api.get(`/v1/structures/${id}/versions/1`);
    expect(one.body).toMatchObject({ number: 1, sha256: sha256(v1), size: v1.length });

    for (const [n, bytes] of [
      [1, v1],
      [2, v2],
    ] as const) {
      const response = await api.raw(`/v1/structures/${id}/download?version=${n}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
      expect(response.headers.get('content-length')).toBe(String(bytes.length));
      expect(response.headers.get('content-type')).toContain('chemical/x-pdb');
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    }
    const ranged = await api.raw(`/v1/structures/${id}/download?version=1`, { headers: { range: 'bytes=100-199' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-199/${v1.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(v1.subarray(100, 200))).toBe(true);
    const suffix = await api.raw(`/v1/structures/${id}/download?version=1`, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(v1.subarray(v1.length - 10))).toBe(true);
    const outside = await api.raw(`/v1/structures/${id}/download?version=1`, { headers: { range: `bytes=${v1.length + 5}-` } });
    expect(outside.status).toBe(416);
    const cached = await api.raw(`/v1/structures/${id}/download?version=2`, { headers: { 'if-none-match': `"${sha256(v2)}"` } });
    expect(cached.status).toBe(304);
    const other = await api.raw(`/v1/structures/${id}/download?format=bcif`);
    expect(other.status).toBe(415);
    expect(((await other.json()) as any).error.code).toBe('conversion_unavailable');
  });

  it('finds structures by name, title, tag and metadata words, and filters by tag and kind', async () => {
    const search = async (query: string) => (await api.get(`/v1/search?${query}`)).body;
    const names = (result: { items: { structure: { name: string } }[] }) => result.items.map((i) => i.structure.name);
    expect(names(await search('q=Crambin'))).toContain('Crambin');
    expect(names(await search('q=plant'))).toContain('Crambin'); // title word and tag word
    expect(names(await search('q=hispanica'))).toEqual(['Crambin']); // metadata value
    expect(names(await search('q=scree'))).toEqual(['Crambin']); // prefix of a tag
    expect(names(await search('tag=screening-2026'))).toEqual(['Crambin']);
    expect(names(await search('q=crambin&kind=small-molecule'))).toEqual([]);
    const byKind = await search('kind=macromolecule&facets=tag,kind,format');
    expect(byKind.total).toBeGreaterThanOrEqual(4);
    expect(byKind.facets.kind).toEqual({ macromolecule: byKind.total });
    expect(byKind.facets.tag['screening-2026']).toBe(1);
    const hit = (await search('q=hispanica')).items[0];
    expect(hit.score).toBeGreaterThan(0);
    expect(hit.highlights.join(' ')).toMatch(/hispanica/i);
    const paged = await search('kind=macromolecule&limit=2');
    expect(paged.items).toHaveLength(2);
    const next = await search(`kind=macromolecule&limit=2&cursor=${paged.nextCursor}`);
    expect(next.items.map((i: { structure: { id: string } }) => i.structure.id)).not.toContain(paged.items[0].structure.id);
  });

  it('follows metadata changes and the trash into the index', async () => {
    const response = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'x.pdb', content: await fixture('chemfiles_insertion-code.pdb') },
      { name: 'insertion demo' },
      { prefer: 'wait=30' },
    );
    const id = response.body.structure.id;
    expect(response.body.structure.currentVersion.summary.hasInsertionCodes).toBe(true);
    await api.patch(`/v1/structures/${id}`, { tags: ['renamed-tag'] });
    await expect.poll(async () => (await api.get('/v1/search?tag=renamed-tag')).body.total, { timeout: 10_000 }).toBe(1);
    expect((await api.delete(`/v1/structures/${id}`)).status).toBe(204);
    await expect.poll(async () => (await api.get('/v1/search?tag=renamed-tag')).body.total, { timeout: 10_000 }).toBe(0);
    expect((await api.post(`/v1/structures/${id}/restore`)).status).toBe(200);
    await expect.poll(async () => (await api.get('/v1/search?tag=renamed-tag')).body.total, { timeout: 10_000 }).toBe(1);
  });

  it('lists structures page by page without gaps or repeats, in each sort order, and projects with counts', async () => {
    const list = await api.get(`/v1/structures?project=${projectId}&limit=2`);
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    expect(list.body.nextCursor).toBeTruthy();
    for (const sort of ['-created', 'created', 'name', '-updated']) {
      const all = (await api.get(`/v1/structures?project=${projectId}&sort=${sort}&limit=500`)).body.items.map((s: { id: string }) => s.id);
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await api.get(`/v1/structures?project=${projectId}&sort=${sort}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        paged.push(...page.body.items.map((s: { id: string }) => s.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(paged, sort).toEqual(all);
    }
    const project = await api.get(`/v1/projects/${projectId}`);
    expect(project.body.structureCount).toBeGreaterThanOrEqual(5);
    expect(project.body.usedBytes).toBeGreaterThan(0);
  });

  it('reports each pipeline job through /v1/jobs', async () => {
    const response = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'multi.pdb', content: await fixture('ngl_multi-models-example.pdb') },
      {},
      { prefer: 'wait=30' },
    );
    expect(response.body.structure.currentVersion.summary.models).toBeGreaterThan(1);
    for (const jobId of response.body.upload.jobs) {
      const job = await api.get(`/v1/jobs/${jobId}`);
      expect(job.status).toBe(200);
      expect(job.body).toMatchObject({ id: jobId, state: 'completed' });
    }
    const events = await api.raw(`/v1/jobs/${response.body.upload.jobs[0]}/events`);
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    expect(await events.text()).toContain('event: completed');
  });

  it('serves health, readiness, metrics and an OpenAPI document that names the routes', async () => {
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as any).checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toContain('molvault_http_request_duration_seconds');
    expect(metrics).toContain('molvault_queue_jobs');
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as any;
    for (const route of ['/v1/projects', '/v1/projects/{id}/structures', '/v1/structures/{id}/download', '/v1/uploads/{id}', '/v1/search', '/v1/jobs/{id}']) {
      expect(Object.keys(doc.paths)).toContain(route);
    }
    expect(doc.paths['/v1/search'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['q', 'tag', 'kind', 'project']));
  });
});
