import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../src/services/maintenance/gc.js';
import { type Client, client, userFactory, waitForUpload } from './helpers/factories.js';
import { buildTar, importArchive, importFiles, waitForImport } from './helpers/imports.js';
import { S3_TESTS_OFF, type S3Server, startS3Server } from './helpers/s3.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const listFiles = async (dir: string) => (await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());

describe.skipIf(S3_TESTS_OFF /* skipped when S3_TESTS=off */)(`molvault on S3 (Ceph RGW; skipped only when S3_TESTS=off)`, () => {
  let server: S3Server;
  let stack: Stack;
  let api: Client;
  let projectId: string;
  let userId: string;

  beforeAll(async () => {
    server = await startS3Server();
    stack = await startStack({ env: server.env });
    const user = await userFactory(stack.ctx);
    userId = user.id;
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'on s3' })).body.id;
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
    await server?.stop();
  });

  async function objectsUnder(prefix: string) {
    const names: string[] = [];
    if (prefix === 'staging/') return stack.ctx.staging.list();
    for await (const blob of stack.ctx.blobs.list()) names.push(blob.sha256);
    return names;
  }

  it('upload → stored → searchable → download (ETag, Range, HEAD) → converted → exported, with no blob or staged file on the local disk', async () => {
    expect(stack.ctx.blobs.kind).toBe('s3');
    const bytes = await fixture('ngl_1crn.pdb');
    const response = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: '1crn.pdb', content: bytes },
      { name: 'Crambin on S3' },
      { prefer: 'wait=60' },
    );
    expect(response.status).toBe(201);
    const structure = response.body.structure;
    expect(structure.currentVersion.sha256).toBe(sha256(bytes));
    expect(await stack.ctx.blobs.verify(sha256(bytes))).toBe(true);

    const found = await api.get('/v1/search?q=crambin');
    expect(found.body.items.map((i: { structure: { id: string } }) => i.structure.id)).toContain(structure.id);

    const whole = await api.raw(`/v1/structures/${structure.id}/download`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(bytes);
    const part = await api.raw(`/v1/structures/${structure.id}/download`, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(100, 200));
    const head = await api.raw(`/v1/structures/${structure.id}/download`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    const current = await api.raw(`/v1/structures/${structure.id}/download`, { headers: { 'if-none-match': `"${sha256(bytes)}"` } });
    expect(current.status).toBe(304);

    const converted = await api.raw(`/v1/structures/${structure.id}/download?format=cif`, { headers: { prefer: 'wait=60' } });
    expect(converted.status).toBe(200);
    const cif = Buffer.from(await converted.arrayBuffer());
    expect(cif.toString('utf8')).toMatch(/^data_/m);
    expect(await stack.ctx.blobs.has(sha256(cif))).toBe(true);

    const exported = await api.post('/v1/exports', { projectId, archive: 'zip' }, { prefer: 'wait=60' });
    expect(exported.body.export?.state, JSON.stringify(exported.body)).toBe('completed');
    const archive = await api.raw(`/v1/exports/${exported.body.export.id}/download`);
    expect(archive.status).toBe(200);
    const zip = Buffer.from(await archive.arrayBuffer());
    expect(zip.subarray(0, 2).toString('latin1')).toBe('PK');
    expect(sha256(zip)).toBe(
      (await stack.ctx.orm.em.fork().execute<{ blob_sha256: string }[]>('select blob_sha256 from export_archives where id = ?', [exported.body.export.id]))[0]
        ?.blob_sha256,
    );

    // Nothing of it on this host's disk: no blob files, no staged upload, no scratch left over.
    expect(await listFiles(path.join(stack.dataDir, 'blobs'))).toEqual([]);
    expect(await listFiles(path.join(stack.dataDir, 'staging'))).toEqual([]);
    expect(await listFiles(path.join(stack.dataDir, 'scratch'))).toEqual([]);
    expect(await objectsUnder('staging/')).toEqual([]);
  }, 300_000);

  it('DOWNLOAD_REDIRECT=1 answers 302 to a presigned URL that serves the bytes with their name', async () => {
    const bytes = await fixture('chemfiles_aspirin.sdf');
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'aspirin.sdf', content: bytes }, {}, { prefer: 'wait=60' });
    expect(response.status).toBe(201);
    const id = response.body.structure.id;
    stack.ctx.config.downloadRedirect = true;
    try {
      const redirect = await api.raw(`/v1/structures/${id}/download`, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      const location = redirect.headers.get('location') as string;
      expect(location).toMatch(/X-Amz-Signature=/);
      const fromStore = await fetch(location);
      expect(fromStore.status).toBe(200);
      expect(fromStore.headers.get('content-disposition')).toBe(`attachment; filename="aspirin.sdf"; filename*=UTF-8''aspirin.sdf`);
      expect(Buffer.from(await fromStore.arrayBuffer())).toEqual(bytes);
      const current = await api.raw(`/v1/structures/${id}/download`, { redirect: 'manual', headers: { 'if-none-match': `"${sha256(bytes)}"` } });
      expect(current.status).toBe(304);
    } finally {
      stack.ctx.config.downloadRedirect = false;
    }
  }, 300_000);

  it('bulk imports many files and an archive through the object store', async () => {
    const pdb = await fixture('ngl_1crn.pdb');
    const files = Array.from({ length: 8 }, (_, i) => ({ name: `copies/crn-${i}.pdb`, content: Buffer.concat([Buffer.from(`REMARK 999 COPY ${i}\n`), pdb]) }));
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status).toBe(202);
    const done = await waitForImport(api, accepted.body.import.id);
    expect(done).toMatchObject({ state: 'completed', total: 8, succeeded: 8 });

    const tar = await buildTar([
      { name: 'set/a.sdf', content: await fixture('chemfiles_aspirin.sdf') },
      { name: 'set/b.mol2', content: await fixture('chemfiles_imatinib.mol2') },
    ]);
    // Another project: the aspirin of the redirect test is in this one already (and would be skipped).
    const other = (await api.post('/v1/projects', { name: 'archive on s3' })).body.id;
    const archive = await importArchive(api, other, tar);
    expect(archive.status).toBe(202);
    const expanded = await waitForImport(api, archive.body.import.id);
    expect(expanded, JSON.stringify(expanded.items)).toMatchObject({ state: 'completed', total: 2, succeeded: 2 });
    expect(await objectsUnder('staging/')).toEqual([]);
    expect(await listFiles(path.join(stack.dataDir, 'blobs'))).toEqual([]);
  }, 300_000);

  it('stages the small files of a multipart import in bundles, one per chunk of 25, and removes them once their files are stored', async () => {
    const pdb = await fixture('ngl_1crn.pdb');
    const { gzipSync } = await import('node:zlib');
    const small = (i: number) => ({ name: `bundled/crn-${i}.pdb`, content: Buffer.concat([Buffer.from(`REMARK 999 BUNDLED ${i}\n`), pdb]) });
    // 30 small files across two chunks; among them one too large for a bundle, one gzipped (taken one by one) and one a duplicate.
    const large = Buffer.concat([Buffer.from('REMARK 999 LARGE\n'), ...Array.from({ length: 6 }, () => pdb)]);
    expect(large.length).toBeGreaterThan(256 * 1024);
    const files = [
      ...Array.from({ length: 26 }, (_, i) => small(i)),
      { name: 'bundled/large.pdb', content: large },
      { name: 'bundled/zipped.pdb.gz', content: gzipSync(small(100).content) },
      { name: 'bundled/again.pdb', content: small(3).content },
      { name: 'bundled/notes.txt', content: Buffer.from('not a structure\n') },
    ];
    const project = (await api.post('/v1/projects', { name: 'bundles on s3' })).body.id;
    const accepted = await importFiles(api, project, files);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const batchId = accepted.body.import.id;
    const rows = await stack.ctx.orm.em
      .fork()
      .execute<{ name: string; staged_bundle: string | null; staged_offset: string | null }[]>(
        'select name, staged_bundle, staged_offset from import_items where batch_id = ? order by position',
        [batchId],
      );
    const bundleOf = Object.fromEntries(rows.map((row) => [row.name, row.staged_bundle]));
    expect(bundleOf['bundled/large.pdb']).toBeNull();
    expect(bundleOf['bundled/crn-0.pdb']).toEqual(expect.any(String));
    expect(new Set(rows.map((row) => row.staged_bundle).filter(Boolean)).size).toBe(2);
    expect(bundleOf['bundled/crn-0.pdb']).not.toBe(bundleOf['bundled/zipped.pdb.gz']);

    const done = await waitForImport(api, batchId);
    expect(done, JSON.stringify(done.items)).toMatchObject({ state: 'completed', total: 30, succeeded: 28, failed: 1, skipped: 1 });
    const byName = Object.fromEntries(done.items.map((item: any) => [item.name, item]));
    // The same content twice, in two chunks that run side by side: whichever claims it first stores it, the other is skipped.
    expect([byName['bundled/again.pdb'].state, byName['bundled/crn-3.pdb'].state].sort()).toEqual(['skipped', 'stored']);
    expect(byName['bundled/notes.txt']).toMatchObject({ state: 'rejected' });
    expect(byName['bundled/zipped.pdb.gz']).toMatchObject({ state: 'stored', sha256: createHash('sha256').update(small(100).content).digest('hex') });
    // Every stored file has its own bytes back, not a neighbour's from the bundle.
    for (const i of [0, 12, 24, 25]) {
      const download = await api.raw(`/v1/structures/${byName[`bundled/crn-${i}.pdb`].structureId}/download`);
      expect(Buffer.from(await download.arrayBuffer())).toEqual(small(i).content);
    }
    const largeDownload = await api.raw(`/v1/structures/${byName['bundled/large.pdb'].structureId}/download`);
    expect(Buffer.from(await largeDownload.arrayBuffer())).toEqual(large);
    expect(await objectsUnder('staging/')).toEqual([]);
  }, 300_000);

  it('the gateway stopped mid-upload: the upload fails with a clear error and leaves no rows; restarted, the next upload works', async () => {
    const before = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from uploads');
    const reservationsBefore = await stack.ctx.orm.em.fork().execute('select * from quota_reservations where owner_id = ?', [userId]);
    const bytes = Buffer.concat([Buffer.from('REMARK 999 OUTAGE\n'), await fixture('ngl_1crn.pdb')]);
    // A body that pauses halfway, while the gateway goes away.
    const half = bytes.length >> 1;
    let release: () => void = () => {};
    const paused = new Promise<void>((resolve) => {
      release = resolve;
    });
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(bytes.subarray(0, half));
        await paused;
        controller.enqueue(bytes.subarray(half));
        controller.close();
      },
    });
    const sending = api.raw(`/v1/projects/${projectId}/structures?filename=outage.pdb`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    await new Promise((r) => setTimeout(r, 300));
    await server.stopGateway();
    release();
    const refused = await sending;
    expect(refused.status).toBe(503);
    const answer = (await refused.json()) as { error: { code: string; message: string } };
    expect(answer.error.code).toBe('storage_unavailable');
    expect(answer.error.message).toMatch(/object store/);
    const after = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from uploads');
    expect(after[0]?.n).toBe(before[0]?.n);
    const reservations = await stack.ctx.orm.em.fork().execute('select * from quota_reservations where owner_id = ?', [userId]);
    expect(reservations).toEqual(reservationsBefore);

    await server.startGateway();
    const again = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'outage.pdb', content: bytes }, {}, { prefer: 'wait=60' });
    expect(again.status).toBe(201);
    expect(await objectsUnder('staging/')).toEqual([]);
  }, 300_000);

  it('an upload accepted before the gateway went down is finished once it is back', async () => {
    const bytes = Buffer.concat([Buffer.from('REMARK 999 ACCEPTED BEFORE\n'), await fixture('ngl_1crn.pdb')]);
    // Workers stopped: the upload is staged in the bucket and recorded, but nobody ingests it yet.
    await stack.workers?.close();
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'before.pdb', content: bytes });
    expect(accepted.status).toBe(202);
    const uploadId = accepted.body.upload.id;
    expect(await stack.ctx.staging.exists(uploadId)).toBe(true);
    await server.stopGateway();
    await server.startGateway();
    const { startWorkers } = await import('../src/workers/main.js');
    const { QUEUE_NAMES } = await import('../src/config/index.js');
    stack.workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    const done = await waitForUpload(api, uploadId, 90_000);
    expect(done.state).toBe('stored');
    expect(await stack.ctx.staging.exists(uploadId)).toBe(false);
  }, 300_000);

  it('garbage collection finds an object without a row through the bucket listing and removes it after the grace period', async () => {
    const { Readable } = await import('node:stream');
    const stray = Buffer.from(`not referenced ${Date.now()}`);
    await stack.ctx.blobs.put(Readable.from([stray]), { sha256: sha256(stray), size: stray.length });
    const kept = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, { dryRun: false });
    expect(kept.files.orphans).toBeGreaterThanOrEqual(1);
    expect(await stack.ctx.blobs.has(sha256(stray))).toBe(true);
    const later = new Date(Date.now() + 2 * stack.ctx.config.gcGraceMs);
    const report = await collectGarbage({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, { dryRun: false, now: later });
    expect(report.files.items.map((i) => i.path)).toContain(stack.ctx.blobs.location(sha256(stray)));
    expect(await stack.ctx.blobs.has(sha256(stray))).toBe(false);
  }, 300_000);
});
