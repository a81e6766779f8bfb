import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/config/index.js';
import { failImportItem } from '../src/services/imports/finish.js';
import { staleStaging } from '../src/services/maintenance/cleanup/staleFiles.js';
import { reconcileAll } from '../src/services/maintenance/reconcile.js';
import { readBundle, unbundle } from '../src/services/upload/bundles.js';
import { startWorkers } from '../src/workers/main.js';
import { client, userFactory } from './helpers/factories.js';
import { buildTar, importFiles, waitForImport } from './helpers/imports.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * Bundled staging (services/upload/bundles.ts) on the local disk with STAGING_BUNDLES=on: the same
 * code the object store runs by default (test/s3.e2e.test.ts imports through it on Ceph RGW).
 */
describe('small files of an import staged in bundles', () => {
  let stack: Stack;

  beforeAll(async () => {
    // Reconcile and cleanup run when the test says, not on their schedules.
    stack = await startStack({
      workers: false,
      env: { STAGING_BUNDLES: 'on', RECONCILE_EVERY_MS: String(24 * 3600_000), CLEANUP_SCHEDULE: '0 0 1 1 *', GC_SCHEDULE: '0 0 1 1 *' },
    });
  });
  afterAll(() => stack?.stop());

  const base = () => fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
  const items = (batchId: string) =>
    stack.ctx.orm.em
      .fork()
      .execute<{ id: string; name: string; state: string; staged_bundle: string | null; staged_offset: string | null; size: string }[]>(
        'select id, name, state, staged_bundle, staged_offset, size from import_items where batch_id = ? order by position',
        [batchId],
      );

  it('a bundle is held while its files wait, gives a file taken one by one its own entry, and each file its own bytes', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'bundles' })).body.id;
    const text = await base();
    const file = (tag: string) => ({ name: `${tag}.pdb`, content: Buffer.from(`REMARK 999 ${tag} ${randomUUID()}\n${text}`, 'latin1') });
    const f4 = file('f4');
    const files = [file('f1'), file('f2'), file('f3'), { name: 'f4.pdb.gz', content: gzipSync(f4.content) }];
    const contents = [files[0], files[1], files[2], f4].map((f) => f?.content as Buffer);
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const batchId = accepted.body.import.id;
    const rows = await items(batchId);
    const bundleId = rows[0]?.staged_bundle as string;
    expect(bundleId).toEqual(expect.any(String));
    expect(rows.map((row) => row.staged_bundle)).toEqual([bundleId, bundleId, bundleId, bundleId]);
    // One entry for the four files, none of their own.
    const staged = await stack.ctx.staging.list();
    expect(staged).toContain(bundleId);
    for (const row of rows) expect(staged).not.toContain(row.id);
    const bundle = (await readBundle(stack.ctx.staging, bundleId)) as Buffer;
    expect(bundle.length).toBe(files.reduce((sum, f) => sum + f.content.length, 0));

    // Long past the staging age, the bundle is still held by its waiting files.
    const em = stack.ctx.orm.em.fork();
    const later = new Date(Date.now() + 3 * 24 * 3600_000);
    await staleStaging.run({ ...stack.ctx, em, dryRun: false, now: later });
    expect(await stack.ctx.staging.list()).toContain(bundleId);

    // A file taken one by one gets an entry of its own with exactly its bytes.
    const f2 = rows[1]?.id as string;
    expect([...(await unbundle(em, stack.ctx.staging, [f2]))]).toEqual([f2]);
    const own: Buffer[] = [];
    for await (const chunk of stack.ctx.staging.read(f2)) own.push(chunk as Buffer);
    expect(Buffer.concat(own)).toEqual(files[1]?.content);

    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const done = await waitForImport(api, batchId);
      expect(done, JSON.stringify(done.items)).toMatchObject({ state: 'completed', succeeded: 4, failed: 0 });
      // Each file stored with its own bytes, not a neighbour's from the bundle (f4 unpacked).
      for (const [i, item] of done.items.entries()) {
        const download = await api.raw(`/v1/structures/${item.structureId}/download`);
        expect(Buffer.from(await download.arrayBuffer())).toEqual(contents[i]);
      }
      // Once every file is done with it, the bundle goes, and f2's entry of its own with it.
      expect(await stack.ctx.staging.list()).toEqual([]);
    } finally {
      await workers.close();
    }
  }, 120_000);

  it('one file sent alone is staged on its own, so an archive sent as a file is still unpacked', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'alone' })).body.id;
    const text = await base();
    const tar = await buildTar([
      { name: 'set/a.pdb', content: Buffer.from(`REMARK 999 A ${randomUUID()}\n${text}`, 'latin1') },
      { name: 'set/b.pdb', content: Buffer.from(`REMARK 999 B ${randomUUID()}\n${text}`, 'latin1') },
    ]);
    const accepted = await importFiles(api, projectId, [{ name: 'set.tar', content: tar }]);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const done = await waitForImport(api, accepted.body.import.id);
      expect(done, JSON.stringify(done.items)).toMatchObject({ state: 'completed', total: 2, succeeded: 2 });
    } finally {
      await workers.close();
    }
    expect(await stack.ctx.staging.list()).toEqual([]);
  }, 120_000);
  it('a bundled file failed by an outage is opened again by reconcile and stored from the bundle', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'bundle outage' })).body.id;
    const text = await base();
    const files = ['o1', 'o2', 'o3'].map((tag) => ({ name: `${tag}.pdb`, content: Buffer.from(`REMARK 999 ${tag} ${randomUUID()}\n${text}`, 'latin1') }));
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const batchId = accepted.body.import.id;
    const rows = await items(batchId);
    const bundleId = rows[0]?.staged_bundle as string;
    expect(rows.map((row) => row.staged_bundle)).toEqual([bundleId, bundleId, bundleId]);
    // The second file failed by a database outage before it had an entry of its own: its bytes are only in the bundle.
    const failed = rows[1]?.id as string;
    expect(await stack.ctx.staging.list()).toEqual([bundleId]);
    await failImportItem({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, batchId, failed, 'Connection terminated unexpectedly');

    const workers = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const first = await waitForImport(api, batchId);
      expect(first).toMatchObject({ state: 'completed', succeeded: 2, failed: 1 });
      // The other two are stored; the bundle stays for the one an outage failed.
      expect(await stack.ctx.staging.list()).toEqual([bundleId]);
      await reconcileAll({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, 0);
      const done = await waitForImport(api, batchId);
      expect(done, JSON.stringify(done.items)).toMatchObject({ state: 'completed', succeeded: 3, failed: 0 });
      for (const [i, item] of done.items.entries()) {
        const download = await api.raw(`/v1/structures/${item.structureId}/download`);
        expect(Buffer.from(await download.arrayBuffer())).toEqual(files[i]?.content);
      }
      expect(await stack.ctx.staging.list()).toEqual([]);
    } finally {
      await workers.close();
    }
  }, 120_000);
});
