import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_VERSION } from '../src/services/exports/manifest.js';
import { runCleanup } from '../src/services/maintenance/cleanup/index.js';
import { CORPUS, hasCorpus } from './helpers/corpus.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { buildTar, buildZip, importArchive, importFiles, waitForImport } from './helpers/imports.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const fixture = (name: string) => fs.readFile(path.join(FIXTURES, name));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
/** The crambin PDB with a REMARK line of its own: same structure, distinct content. */
const crambin = async (remark: string) => Buffer.from(`${(await fixture('ngl_1crn.pdb')).toString('latin1')}REMARK 999 ${remark}\n`, 'latin1');

async function reservations(stack: Stack, userId: string) {
  const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from quota_reservations where owner_id = ?', [userId]);
  return Number(row.n);
}

async function itemRows(stack: Stack, importId: string) {
  const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from import_items where batch_id = ?', [importId]);
  return Number(row.n);
}

/** Reads a server-sent event stream until its final event; returns the events. */
async function readEvents(api: Client, path: string): Promise<{ event: string; data: any }[]> {
  const response = await api.raw(path);
  expect(response.status).toBe(200);
  const events: { event: string; data: any }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1];
      events.push({ event, data: data ? JSON.parse(data) : undefined });
      end = buffer.indexOf('\n\n');
    }
  }
  return events;
}

describe('bulk import', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;

  beforeAll(async () => {
    stack = await startStack();
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
  });
  afterAll(() => stack?.stop());

  it('imports many files sent as multipart: relative paths kept as names, bad files rejected with reasons, progress on the batch job', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'multipart' })).body.id;
    const files = [
      { name: 'sub/dir/ngl_1crn.pdb', content: await fixture('ngl_1crn.pdb') },
      { name: 'chemfiles_aspirin.sdf', content: await fixture('chemfiles_aspirin.sdf') },
      { name: 'zipped/ngl_1CRN.cif.gz', content: await fixture('ngl_1CRN.cif.gz') },
      { name: 'notes.txt', content: new TextEncoder().encode('not a structure\n') },
      { name: 'empty.pdb', content: new Uint8Array() },
      { name: '.DS_Store', content: new Uint8Array([0, 1, 2]) },
      { name: '__MACOSX/._ngl_1crn.pdb', content: new Uint8Array([0, 5, 22, 7]) },
    ];
    const accepted = await importFiles(api, projectId, files, { tags: 'bulk,screening', metadata: '{"lab": "north"}' });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const { id, jobId } = accepted.body.import;
    expect(accepted.headers.get('location')).toBe(`/v1/imports/${id}`);
    expect(jobId).toBe(`batch-${id}`);
    const events = await readEvents(api, `/v1/jobs/${jobId}/events`);
    const last = events[events.length - 1];
    expect(last.event).toBe('completed');
    expect(last.data.progress).toEqual({ total: 7, done: 7, succeeded: 3, failed: 2, skipped: 2 });

    const done = await waitForImport(api, id);
    expect(done).toMatchObject({ id, projectId, source: 'files', state: 'completed', total: 7, succeeded: 3, failed: 2, skipped: 2, pending: 0, jobId });
    expect(done.finishedAt).toEqual(expect.any(String));
    const byName = Object.fromEntries(done.items.map((i: any) => [i.name, i]));
    expect(done.items.map((i: any) => i.name)).toEqual(files.map((f) => f.name));
    expect(byName['notes.txt']).toMatchObject({ state: 'rejected', error: { code: 'unsupported_format', message: expect.any(String) } });
    expect(byName['empty.pdb']).toMatchObject({ state: 'rejected', error: { code: 'empty_file' } });
    expect(byName['.DS_Store']).toMatchObject({ state: 'skipped', error: { code: 'hidden_file' } });
    expect(byName['__MACOSX/._ngl_1crn.pdb']).toMatchObject({ state: 'skipped', error: { code: 'macos_metadata' } });
    const stored = (await api.get(`/v1/structures/${byName['sub/dir/ngl_1crn.pdb'].structureId}`)).body;
    expect(stored).toMatchObject({
      projectId,
      name: 'ngl_1crn',
      tags: ['bulk', 'screening'],
      metadata: { lab: 'north' },
      currentVersion: { filename: 'ngl_1crn.pdb' },
    });
    expect(byName['zipped/ngl_1CRN.cif.gz']).toMatchObject({ state: 'stored', sha256: sha256(await fixture('ngl_1CRN.cif')) });
    // The compression seen as each file was staged, so the chunk job need not read the first bytes back.
    const compression = await stack.ctx.orm.em
      .fork()
      .execute<{ name: string; received_compression: string | null }[]>(
        'select name, received_compression from import_items where batch_id = ? order by position',
        [id],
      );
    expect(Object.fromEntries(compression.map((row) => [row.name, row.received_compression]))).toMatchObject({
      'sub/dir/ngl_1crn.pdb': 'none',
      'chemfiles_aspirin.sdf': 'none',
      'zipped/ngl_1CRN.cif.gz': 'gzip',
      'empty.pdb': 'none',
      '.DS_Store': null,
    });

    // The rejected and skipped files left nothing behind; the stored ones hold no reservation any more.
    expect(await reservations(stack, user.id)).toBe(0);
    expect(await stack.ctx.staging.list()).toEqual([]);

    // Filters and pages over the items, from Postgres.
    const refused = await api.get(`/v1/imports/${id}?state=rejected,failed`);
    expect(refused.body.items.map((i: any) => i.name).sort()).toEqual(['empty.pdb', 'notes.txt']);
    const page = await api.get(`/v1/imports/${id}?limit=3`);
    expect(page.body.items).toHaveLength(3);
    const rest = await api.get(`/v1/imports/${id}?limit=10&cursor=${page.body.nextCursor}`);
    expect(rest.body.items.map((i: any) => i.position)).toEqual([3, 4, 5, 6]);
    expect(rest.body.nextCursor).toBeNull();
    expect((await api.get(`/v1/imports/${id}?state=lost`)).status).toBe(400);
    const list = await api.get('/v1/imports');
    expect(list.body.items.map((b: any) => b.id)).toContain(id);

    // Another user sees none of it.
    const stranger = client(stack.url, (await userFactory(stack.ctx)).token);
    expect((await stranger.get(`/v1/imports/${id}`)).status).toBe(404);
    expect((await stranger.get(`/v1/jobs/${jobId}`)).status).toBe(404);
    expect((await stranger.get('/v1/imports')).body.items).toEqual([]);
    expect((await importFiles(stranger, projectId, files.slice(0, 1))).status).toBe(404);
  });

  it('skips what the project already holds: the same files again store nothing new', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'rerun' })).body.id;
    const files = [
      { name: 'a.pdb', content: await crambin('rerun a') },
      { name: 'b.pdb', content: await crambin('rerun b') },
      { name: 'b-again.pdb', content: await crambin('rerun b') },
      { name: 'c.cif.gz', content: await fixture('ngl_1CRN.cif.gz') },
    ];
    const first = await waitForImport(api, (await importFiles(api, projectId, files)).body.import.id);
    expect(first).toMatchObject({ total: 4, succeeded: 3, skipped: 1 });
    const skipped = first.items.filter((i: any) => i.state === 'skipped');
    expect(skipped).toHaveLength(1);
    expect(['b.pdb', 'b-again.pdb']).toContain(skipped[0].name);
    expect(skipped[0].error.code).toMatch(/^(already_stored|duplicate_content)$/);
    const again = await waitForImport(api, (await importFiles(api, projectId, files)).body.import.id);
    expect(again).toMatchObject({ state: 'completed', total: 4, succeeded: 0, failed: 0, skipped: 4 });
    for (const item of again.items)
      expect(item, item.name).toMatchObject({ state: 'skipped', error: { code: 'already_stored' }, structureId: expect.any(String) });
    const structures = await api.get(`/v1/structures?project=${projectId}&limit=100`);
    expect(structures.body.items).toHaveLength(3);

    // A client can ask first and leave out what would be skipped (hashes of the unpacked content).
    const unknown = sha256(await crambin('never sent'));
    const check = await api.post(`/v1/projects/${projectId}/imports/check`, {
      sha256: [sha256(files[0].content), sha256(await fixture('ngl_1CRN.cif')), unknown],
    });
    expect(check.status).toBe(200);
    expect(check.body.stored.map((s: any) => s.sha256).sort()).toEqual([sha256(files[0].content), sha256(await fixture('ngl_1CRN.cif'))].sort());
    expect(check.body.stored.find((s: any) => s.sha256 === sha256(files[0].content))).toMatchObject({ name: 'a', structureId: expect.any(String) });
    expect((await api.post(`/v1/projects/${projectId}/imports/check`, { sha256: ['nope'] })).status).toBe(400);
  });

  it('takes compressed files with their chunk: each claimed once unpacked, a duplicate skipped with its blob gone, a corrupt one rejected', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'compressed in bulk' })).body.id;
    const plain = await crambin('gz in bulk, plain');
    const twin = await crambin('gz in bulk, two gz');
    const files = [
      { name: 'plain.pdb', content: plain },
      { name: 'plain-again.pdb.gz', content: gzipSync(plain) },
      { name: 'twin-1.pdb.gz', content: gzipSync(twin) },
      { name: 'twin-2.pdb.gz', content: gzipSync(twin, { level: 1 }) },
      { name: 'new.cif.gz', content: await fixture('ngl_1CRN.cif.gz') },
      { name: 'broken.pdb.gz', content: gzipSync(await crambin('gz in bulk, broken')).subarray(0, 200) },
    ];
    const done = await waitForImport(api, (await importFiles(api, projectId, files)).body.import.id);
    expect(done, JSON.stringify(done.items)).toMatchObject({ state: 'completed', total: 6, succeeded: 3, skipped: 2, failed: 1 });
    const byName = Object.fromEntries(done.items.map((item: any) => [item.name, item]));
    expect(byName['plain.pdb']).toMatchObject({ state: 'stored', sha256: sha256(plain) });
    // Claimed by the unpacked content, after the plain file of the same chunk claimed it by its received bytes.
    expect(byName['plain-again.pdb.gz']).toMatchObject({ state: 'skipped', error: { code: 'duplicate_content' } });
    const twins = [byName['twin-1.pdb.gz'], byName['twin-2.pdb.gz']];
    expect(twins.map((item: any) => item.state).sort()).toEqual(['skipped', 'stored']);
    expect(twins.find((item: any) => item.state === 'stored')).toMatchObject({ sha256: sha256(twin) });
    expect(byName['new.cif.gz']).toMatchObject({ state: 'stored', sha256: sha256(await fixture('ngl_1CRN.cif')) });
    expect(byName['broken.pdb.gz']).toMatchObject({ state: 'rejected', error: { code: 'corrupt_compression' } });
    const structures = await api.get(`/v1/structures?project=${projectId}&limit=100`);
    expect(structures.body.items).toHaveLength(3);
    // The skipped and the rejected files left no blob, staging entry, temp file or reservation behind.
    const [blobs] = await stack.ctx.orm.em
      .fork()
      .execute<{ n: string }[]>('select count(*) as n from blobs where sha256 = any(?::text[])', [`{${[sha256(plain), sha256(twin)].join(',')}}`]);
    expect(Number(blobs.n)).toBe(2);
    expect(await leftovers(stack.ctx, user.id)).toMatchObject({ tempFiles: 0, stagingEntries: 0 });
    expect(await reservations(stack, user.id)).toBe(0);

    // Sent again, every compressed file is found stored once unpacked.
    const again = await waitForImport(api, (await importFiles(api, projectId, files.slice(1, 5))).body.import.id);
    expect(again).toMatchObject({ state: 'completed', total: 4, succeeded: 0, skipped: 4 });
    for (const item of again.items)
      expect(item, item.name).toMatchObject({ state: 'skipped', error: { code: 'already_stored' }, structureId: expect.any(String) });
  });

  it('imports an archive sent as the body or as the one multipart file; links, traversal and special files are skipped with reasons', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'archives' })).body.id;
    const good = await crambin('archive good');
    const tarGz = await buildTar([
      { name: 'set/', type: 'directory' },
      { name: 'set/good.pdb', content: good },
      { name: 'set/aspirin.sdf', content: await fixture('chemfiles_aspirin.sdf') },
      { name: '../evil.pdb', content: await crambin('evil') },
      { name: '/abs.pdb', content: await crambin('absolute') },
      { name: 'set/passwd.pdb', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'set/hard.pdb', type: 'link', linkname: 'set/good.pdb' },
      { name: 'set/pipe', type: 'fifo' },
      { name: 'set/nested.zip', content: await buildZip([{ name: 'inner.pdb', content: await crambin('nested') }]) },
    ]);
    const accepted = await importArchive(api, projectId, tarGz, '?tags=from-tar');
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(accepted.body.import).toMatchObject({ state: 'expanding', source: 'archive' });
    const done = await waitForImport(api, accepted.body.import.id);
    const byName = Object.fromEntries(done.items.map((i: any) => [i.name, i]));
    expect(done).toMatchObject({ state: 'completed', total: 8, succeeded: 2, failed: 1, skipped: 5 });
    expect(byName['../evil.pdb']).toMatchObject({ state: 'skipped', error: { code: 'unsafe_path' } });
    expect(byName['/abs.pdb']).toMatchObject({ state: 'skipped', error: { code: 'unsafe_path' } });
    expect(byName['set/passwd.pdb']).toMatchObject({ state: 'skipped', error: { code: 'link_entry' } });
    expect(byName['set/hard.pdb']).toMatchObject({ state: 'skipped', error: { code: 'link_entry' } });
    expect(byName['set/pipe']).toMatchObject({ state: 'skipped', error: { code: 'special_file' } });
    expect(byName['set/nested.zip']).toMatchObject({ state: 'rejected', error: { code: 'unsupported_format' } });
    expect((await api.get(`/v1/structures/${byName['set/good.pdb'].structureId}`)).body).toMatchObject({ name: 'good', tags: ['from-tar'] });

    // A zip in a multipart field: the same rules, read from the central directory.
    const zip = await buildZip([
      { name: 'z/good.pdb', content: await crambin('zip good') },
      { name: '../evil.pdb', content: await crambin('zip evil') },
      { name: '/abs.pdb', content: await crambin('zip absolute') },
      { name: 'z/link.pdb', content: new TextEncoder().encode('/etc/passwd'), mode: 0o120777 },
      { name: 'z/.hidden.pdb', content: await crambin('zip hidden') },
    ]);
    const zipped = await importFiles(api, projectId, [{ name: 'bundle.zip', content: zip }]);
    expect(zipped.status, JSON.stringify(zipped.body)).toBe(202);
    expect(zipped.body.import.source).toBe('archive');
    const zipDone = await waitForImport(api, zipped.body.import.id);
    const zipItems = Object.fromEntries(zipDone.items.map((i: any) => [i.name, i]));
    expect(zipDone).toMatchObject({ state: 'completed', total: 5, succeeded: 1, skipped: 4 });
    expect(zipItems['../evil.pdb'].error.code).toBe('unsafe_path');
    expect(zipItems['/abs.pdb'].error.code).toBe('unsafe_path');
    expect(zipItems['z/link.pdb'].error.code).toBe('link_entry');
    expect(zipItems['z/.hidden.pdb'].error.code).toBe('hidden_file');

    // Nothing of the skipped entries was stored, or written anywhere under its name.
    const names = (await api.get(`/v1/structures?project=${projectId}&limit=100`)).body.items.map((s: any) => s.name).sort();
    expect(names).toEqual(['aspirin', 'good', 'good']);
    const written = await fs.readdir(path.dirname(stack.dataDir), { recursive: true }).catch(() => [] as string[]);
    expect(written.filter((f) => /evil\.pdb$|abs\.pdb$/.test(String(f)))).toEqual([]);
    expect(await stack.ctx.staging.list()).toEqual([]);
  });

  it('refuses what is not an import with a reason', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'refusals' })).body.id;
    const notArchive = await importArchive(api, projectId, await fixture('ngl_1crn.pdb'));
    expect(notArchive.status).toBe(415);
    expect(notArchive.body.error.code).toBe('not_an_archive');
    const badIds = await api.post(`/v1/projects/${projectId}/imports`, { pdbIds: ['1CRN', 'crambin', '12'] });
    expect(badIds.status).toBe(400);
    expect(badIds.body.error).toMatchObject({ code: 'invalid_pdb_ids', details: { invalid: ['crambin', '12'] } });
    const noFiles = await importFiles(api, projectId, [], { tags: 'x' });
    expect(noFiles.status).toBe(400);
    const badMetadata = await importFiles(api, projectId, [{ name: 'a.pdb', content: await crambin('bad metadata') }], { metadata: 'not json' });
    expect(badMetadata.status).toBe(400);
    expect(badMetadata.body.error.code).toBe('invalid_metadata');
    expect((await api.post('/v1/projects/00000000-0000-4000-8000-000000000000/imports', { pdbIds: ['1CRN'] })).status).toBe(404);
    expect(await stack.ctx.staging.list()).toEqual([]);
    expect((await api.get(`/v1/structures?project=${projectId}`)).body.items).toEqual([]);
  });

  it('restores an export archive: names, tags, metadata, versions in order with messages and pins, checksums', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'restored' })).body.id;
    const v1 = await crambin('manifest v1');
    const v2 = await crambin('manifest v2');
    const v3 = await crambin('manifest v3');
    const aspirin = await fixture('chemfiles_aspirin.sdf');
    const tampered = await crambin('manifest tampered');
    const iso = new Date().toISOString();
    const version = (
      n: number,
      file: string,
      bytes: Buffer,
      extra: { message?: string | null; pinned?: boolean; current?: boolean; format?: 'pdb' | 'sdf' },
    ) => ({
      number: n,
      path: file,
      format: extra.format ?? 'pdb',
      size: bytes.length,
      sha256: sha256(bytes),
      originalFormat: extra.format ?? 'pdb',
      originalSha256: sha256(bytes),
      filename: path.basename(file),
      message: extra.message ?? null,
      pinned: extra.pinned ?? false,
      current: extra.current ?? false,
      createdAt: iso,
      conversion: null,
    });
    const manifest = {
      molvault: MANIFEST_VERSION,
      exportId: '6f1c2b1e-0d7a-4c3e-9f5a-2b8e7d6c5a41',
      exportedAt: iso,
      project: { id: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', name: 'origin', description: '', tags: [], metadata: {} },
      format: 'original',
      versions: 'all',
      structures: [
        {
          id: '11111111-1111-4111-8111-111111111111',
          name: 'crambin history',
          description: 'three versions',
          kind: 'macromolecule',
          tags: ['plant', 'xray'],
          metadata: { organism: 'Crambe abyssinica', resolution: 1.5 },
          createdAt: iso,
          // Listed out of order on purpose: the numbers decide.
          versions: [
            version(3, 'structures/crambin/v3.pdb', v3, { message: 'third', current: true }),
            version(1, 'structures/crambin/v1.pdb', v1, { message: 'first' }),
            version(2, 'structures/crambin/v2.pdb', v2, { message: 'second', pinned: true }),
          ],
        },
        {
          id: '22222222-2222-4222-8222-222222222222',
          name: 'aspirin',
          description: '',
          kind: 'small-molecule',
          tags: ['drug'],
          metadata: { supplier: 'acme' },
          createdAt: iso,
          versions: [version(1, 'structures/aspirin/aspirin.sdf', aspirin, { message: null, current: true, format: 'sdf' })],
        },
        {
          id: '33333333-3333-4333-8333-333333333333',
          name: 'tampered',
          description: '',
          kind: 'macromolecule',
          tags: [],
          metadata: {},
          createdAt: iso,
          versions: [version(1, 'structures/tampered/t.pdb', v1, { current: true })],
        },
      ],
      files: [] as { path: string; size: number; sha256: string }[],
    };
    const contents: [string, Buffer][] = [
      ['structures/crambin/v1.pdb', v1],
      ['structures/crambin/v2.pdb', v2],
      ['structures/crambin/v3.pdb', v3],
      ['structures/aspirin/aspirin.sdf', aspirin],
      ['structures/tampered/t.pdb', tampered],
      ['extra/loose.pdb', await crambin('manifest loose')],
    ];
    manifest.files = contents.map(([file, bytes]) => ({ path: file, size: bytes.length, sha256: sha256(bytes) }));
    const archive = await buildTar([
      // The manifest last: a tar is read in one pass, so it must work wherever the manifest is.
      ...contents.map(([name, content]) => ({ name, content })),
      { name: 'manifest.json', content: Buffer.from(JSON.stringify(manifest)) },
    ]);
    const done = await waitForImport(api, (await importArchive(api, projectId, archive)).body.import.id);
    const byName = Object.fromEntries(done.items.map((i: any) => [i.name, i]));
    expect(done).toMatchObject({ state: 'completed', total: 7, succeeded: 5, failed: 1, skipped: 1 });
    expect(byName['manifest.json']).toMatchObject({ state: 'skipped', error: { code: 'manifest' } });
    expect(byName['structures/tampered/t.pdb']).toMatchObject({ state: 'rejected', error: { code: 'checksum_mismatch' } });

    const crambinId = byName['structures/crambin/v1.pdb'].structureId;
    expect(byName['structures/crambin/v3.pdb'].structureId).toBe(crambinId);
    const restored = (await api.get(`/v1/structures/${crambinId}`)).body;
    expect(restored).toMatchObject({
      name: 'crambin history',
      description: 'three versions',
      kind: 'macromolecule',
      tags: ['plant', 'xray'],
      metadata: { organism: 'Crambe abyssinica', resolution: 1.5 },
      currentVersion: { number: 3, sha256: sha256(v3) },
    });
    const versions = (await api.get(`/v1/structures/${crambinId}/versions`)).body.items.sort((a: any, b: any) => a.number - b.number);
    expect(versions.map((v: any) => [v.number, v.message, v.pinned, v.sha256])).toEqual([
      [1, 'first', false, sha256(v1)],
      [2, 'second', true, sha256(v2)],
      [3, 'third', false, sha256(v3)],
    ]);
    const drug = (await api.get(`/v1/structures/${byName['structures/aspirin/aspirin.sdf'].structureId}`)).body;
    expect(drug).toMatchObject({ name: 'aspirin', tags: ['drug'], metadata: { supplier: 'acme' }, currentVersion: { sha256: sha256(aspirin) } });
    expect((await api.get(`/v1/structures/${byName['extra/loose.pdb'].structureId}`)).body).toMatchObject({ name: 'loose' });

    // The same archive again restores nothing twice.
    const again = await waitForImport(api, (await importArchive(api, projectId, archive)).body.import.id);
    expect(again).toMatchObject({ state: 'completed', total: 7, succeeded: 0 });
    expect(
      again.items
        .filter((i: any) => i.state === 'skipped')
        .map((i: any) => i.error.code)
        .sort(),
    ).toEqual(['already_stored', 'already_stored', 'already_stored', 'already_stored', 'already_stored', 'manifest']);
    expect((await api.get(`/v1/structures?project=${projectId}&limit=100`)).body.items).toHaveLength(3);
  });
});

describe('a refused import leaves nothing', () => {
  let stack: Stack;
  const MAX_ITEMS = 8;

  beforeAll(async () => {
    stack = await startStack({ env: { IMPORT_MAX_ITEMS: String(MAX_ITEMS) } });
  });
  afterAll(() => stack?.stop());

  async function expectNothingLeft(userId: string, importId: string) {
    expect(await leftovers(stack.ctx, userId)).toMatchObject({ structures: 0, versions: 0, blobFiles: 0, tempFiles: 0, stagingEntries: 0 });
    expect(await reservations(stack, userId)).toBe(0);
    expect(await itemRows(stack, importId)).toBe(0);
  }

  it('refuses a zip bomb before unpacking it', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'bombs' })).body.id;
    // 100 MiB of zeros deflate to about 100 KB: far past the expansion ratio.
    const bomb = await buildZip([
      { name: 'fine.pdb', content: await crambin('bomb neighbour') },
      { name: 'zeros.pdb', content: new Uint8Array(100 * 1024 * 1024) },
    ]);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const accepted = await importArchive(api, projectId, bomb);
    expect(accepted.status).toBe(202);
    const done = await waitForImport(api, accepted.body.import.id);
    expect(done).toMatchObject({
      state: 'failed',
      total: 0,
      items: [],
      error: { code: 'archive_too_large', message: expect.stringMatching(/decompression bomb/) },
    });
    await expectNothingLeft(user.id, done.id);
  });

  it('refuses a tar.gz bomb from its headers, before writing the entry', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'tar bombs' })).body.id;
    const bomb = await buildTar([
      { name: 'fine.pdb', content: await crambin('tar bomb neighbour') },
      { name: 'zeros.pdb', content: new Uint8Array(100 * 1024 * 1024) },
    ]);
    const done = await waitForImport(api, (await importArchive(api, projectId, bomb)).body.import.id);
    expect(done).toMatchObject({ state: 'failed', total: 0, error: { code: 'archive_too_large' } });
    await expectNothingLeft(user.id, done.id);
  });

  it('fails a damaged archive with the reason, keeping nothing of what it read before the damage', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'damaged' })).body.id;
    const entries = await Promise.all(Array.from({ length: 4 }, async (_, i) => ({ name: `d${i}.pdb`, content: await crambin(`damaged ${i}`) })));
    const whole = await buildTar(entries);
    const truncatedTar = whole.subarray(0, Math.floor(whole.length * 0.7));
    const tarDone = await waitForImport(api, (await importArchive(api, projectId, truncatedTar)).body.import.id);
    expect(tarDone).toMatchObject({ state: 'failed', total: 0, error: { code: 'corrupt_archive', message: expect.stringMatching(/damaged or truncated/) } });
    await expectNothingLeft(user.id, tarDone.id);
    const zip = await buildZip(entries);
    const zipDone = await waitForImport(api, (await importArchive(api, projectId, zip.subarray(0, zip.length - 30))).body.import.id);
    expect(zipDone).toMatchObject({ state: 'failed', total: 0, error: { code: 'corrupt_archive' } });
    await expectNothingLeft(user.id, zipDone.id);
  });

  it('refuses more files than one import takes, sent as files or in an archive', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'too many' })).body.id;
    const files = await Promise.all(Array.from({ length: MAX_ITEMS + 1 }, async (_, i) => ({ name: `n${i}.pdb`, content: await crambin(`many ${i}`) })));
    const refused = await importFiles(api, projectId, files);
    expect(refused.status).toBe(413);
    expect(refused.body.error).toMatchObject({ code: 'too_many_items', details: { maxItems: MAX_ITEMS } });
    // A refused request leaves nothing, not even a failed import.
    expect((await api.get('/v1/imports')).body.items).toEqual([]);
    expect(await reservations(stack, user.id)).toBe(0);
    const archived = await waitForImport(api, (await importArchive(api, projectId, await buildTar(files))).body.import.id);
    expect(archived).toMatchObject({ state: 'failed', total: 0, error: { code: 'too_many_items' } });
    await expectNothingLeft(user.id, archived.id);
  });

  it('refuses files over the remaining quota as a whole, with 507', async () => {
    const files = await Promise.all(Array.from({ length: 6 }, async (_, i) => ({ name: `q${i}.pdb`, content: await crambin(`quota ${i}`) })));
    const total = files.reduce((sum, f) => sum + f.content.length, 0);
    // Room for about half of them: a per-file check would store three; the batch stores none.
    const user = await userFactory(stack.ctx, { quotaBytes: Math.floor(total / 2) });
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'tight' })).body.id;
    const refused = await importFiles(api, projectId, files);
    expect(refused.status).toBe(507);
    expect(refused.body.error).toMatchObject({ code: 'quota_exceeded', details: { quotaBytes: Math.floor(total / 2) } });
    // A refused request leaves nothing, not even a failed import.
    expect((await api.get('/v1/imports')).body.items).toEqual([]);
    expect(await leftovers(stack.ctx, user.id)).toMatchObject({ structures: 0, versions: 0, blobFiles: 0, tempFiles: 0, stagingEntries: 0 });
    expect(await reservations(stack, user.id)).toBe(0);
  });

  it('fails an archive whose contents pass the remaining quota, in the worker, with the 507 reason', async () => {
    const files = await Promise.all(Array.from({ length: 6 }, async (_, i) => ({ name: `q${i}.pdb`, content: await crambin(`archive quota ${i}`) })));
    const archive = await buildTar(files);
    const total = files.reduce((sum, f) => sum + f.content.length, 0);
    // The gzipped archive fits; what it unpacks to does not.
    const user = await userFactory(stack.ctx, { quotaBytes: Math.floor(total / 2) });
    expect(archive.length).toBeLessThan(total / 2);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'tight archive' })).body.id;
    const accepted = await importArchive(api, projectId, archive);
    expect(accepted.status).toBe(202);
    const done = await waitForImport(api, accepted.body.import.id);
    expect(done).toMatchObject({ state: 'failed', total: 0, error: { code: 'quota_exceeded', status: 507, details: { quotaBytes: Math.floor(total / 2) } } });
    await expectNothingLeft(user.id, done.id);
  });
});

describe('import by PDB id', () => {
  let stack: Stack;
  let server: http.Server;
  let mirror: string;
  const served: Record<string, Buffer> = {};
  const requests: string[] = [];
  let flaky = 0;

  beforeAll(async () => {
    // Corpus mmCIF files when the corpus is here, else the fixture; gzipped like the RCSB mirror.
    const sources: Record<string, string> = hasCorpus
      ? {
          '1CRN': path.join(CORPUS, 'cif/ngl_1CRN.cif'),
          '1A8O': path.join(CORPUS, 'cif/biopython_1A8O.cif'),
          '1BNA': path.join(CORPUS, 'cif/pymmcif_1bna.cif'),
        }
      : { '1CRN': path.join(FIXTURES, 'ngl_1CRN.cif') };
    for (const [id, file] of Object.entries(sources)) served[id] = gzipSync(await fs.readFile(file));
    // Served after a 503 (so retried); content of its own, or it would be skipped as the same as 1CRN.
    served['2RTY'] = gzipSync(Buffer.concat([await fs.readFile(sources['1CRN']), Buffer.from('# fetched after a retry\n')]));
    server = http.createServer((request, response) => {
      requests.push(request.url ?? '');
      const id = /^\/download\/(.+)\.cif\.gz$/.exec(request.url ?? '')?.[1];
      if (id === '7NVR') return; // never answers
      if (id === '8STL') {
        response.writeHead(200, { 'content-type': 'application/gzip' });
        response.flushHeaders(); // headers, then nothing
        return;
      }
      if (id === '2RTY' && flaky++ === 0) {
        response.writeHead(503).end('busy');
        return;
      }
      const body = id ? served[id] : undefined;
      if (!body) {
        response.writeHead(404).end('not found');
        return;
      }
      response.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    stack = await startStack({
      env: { PDB_MIRROR_URL: `${mirror}/download/{id}.cif.gz`, PDB_FETCH_TIMEOUT_MS: '500', PDB_FETCH_ATTEMPTS: '2', PDB_FETCH_BACKOFF_MS: '50' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('fetches each id from the mirror; a 404 and a stalled server end as failed items with reasons', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'from the PDB' })).body.id;
    const good = Object.keys(served).filter((id) => id !== '2RTY');
    const pdbIds = [...good.map((id) => id.toLowerCase()), '2RTY', '9ZZZ', '7NVR', '8STL', '1crn'];
    const accepted = await api.post(`/v1/projects/${projectId}/imports`, { pdbIds, tags: ['pdb'] });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(accepted.body.import.source).toBe('pdb_ids');
    const done = await waitForImport(api, accepted.body.import.id);
    // The first item of each name (1CRN is listed twice).
    const byName = Object.fromEntries(done.items.reverse().map((i: any) => [i.name, i]));
    expect(done).toMatchObject({ state: 'completed', total: pdbIds.length, succeeded: good.length + 1, failed: 3, skipped: 1 });
    for (const id of good) expect(byName[id], id).toMatchObject({ state: 'stored', structureId: expect.any(String) });
    expect(byName['2RTY']).toMatchObject({ state: 'stored' });
    expect(byName['9ZZZ']).toMatchObject({ state: 'failed', error: { code: 'pdb_not_found', message: expect.stringMatching(/no entry 9ZZZ.*404/) } });
    expect(byName['7NVR']).toMatchObject({
      state: 'failed',
      error: { code: 'pdb_fetch_failed', message: expect.stringMatching(/no answer for 0\.5 s.*2 attempts/) },
    });
    expect(byName['8STL']).toMatchObject({ state: 'failed', error: { code: 'pdb_fetch_failed', message: expect.stringMatching(/no answer/) } });
    // Retried (network errors, timeouts, 5xx), never a 404.
    expect(requests.filter((r) => r.includes('9ZZZ'))).toHaveLength(1);
    expect(requests.filter((r) => r.includes('7NVR'))).toHaveLength(2);
    expect(requests.filter((r) => r.includes('2RTY'))).toHaveLength(2);
    const duplicates = done.items.filter((i: any) => i.state === 'skipped');
    expect(duplicates).toMatchObject([{ name: '1CRN', error: { code: 'duplicate_in_request' } }]);
    const crambinStructure = (await api.get(`/v1/structures/${byName['1CRN'].structureId}`)).body;
    expect(crambinStructure).toMatchObject({ name: '1CRN', tags: ['pdb'], currentVersion: { format: 'cif', filename: '1CRN.cif.gz' } });
    expect(await stack.ctx.staging.list()).toEqual([]);
  });
});

describe('cleanup around imports', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ workers: false });
  });
  afterAll(() => stack?.stop());

  it('fails an import whose request died while receiving, and keeps the files and quota of one waiting for workers', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'cleanup' })).body.id;
    // An import the workers have not reached yet: its staged files and its quota must outlive any age limit.
    const waiting = await importFiles(api, projectId, [{ name: 'a.pdb', content: await crambin('waiting a') }]);
    expect(waiting.status).toBe(202);
    const waitingItem = (await api.get(`/v1/imports/${waiting.body.import.id}`)).body.items[0];
    // An import whose API process died mid-request: a receiving batch, a staged file and a reservation.
    const em = stack.ctx.orm.em.fork();
    const abandonedId = '0b8f2a51-7c3e-4d6a-9e1f-3a5b7c9d1e2f';
    await em.execute(
      `insert into import_batches (id, owner_id, project_id, source, state, options, job_id, created_at, updated_at) values (?, ?, ?, 'files', 'receiving', '{}', ?, now(), now())`,
      [abandonedId, user.id, projectId, `batch-${abandonedId}`],
    );
    await em.execute(`insert into quota_reservations (upload_id, owner_id, bytes, created_at, updated_at) values (?, ?, 1000, now(), now())`, [
      abandonedId,
      user.id,
    ]);
    const orphan = '5d2c9e7a-1b3f-4a6c-8e0d-2f4a6b8c0d1e';
    await stack.ctx.staging.write(orphan, Readable.from([Buffer.from('half a file')]));

    const later = new Date(Date.now() + 48 * 3600_000);
    const report = await runCleanup({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, { now: later });
    expect(report.steps.find((s) => s.name === 'abandoned imports')?.removed).toBe(1);

    const abandoned = (await api.get(`/v1/imports/${abandonedId}`)).body;
    expect(abandoned).toMatchObject({ state: 'failed', error: { code: 'upload_interrupted' } });
    const held = await em.execute<{ upload_id: string }[]>('select upload_id from quota_reservations where owner_id = ?', [user.id]);
    expect(held.map((r) => r.upload_id)).toEqual([waiting.body.import.id]);
    // The waiting item's file is kept; the orphan is swept.
    expect(await stack.ctx.staging.list()).toEqual([expect.any(String)]);
    const [kept] = await stack.ctx.staging.list();
    const [row] = await em.execute<{ name: string }[]>('select name from import_items where id = ?', [kept]);
    expect(row.name).toBe(waitingItem.name);
  });
});
