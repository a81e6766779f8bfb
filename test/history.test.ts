import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/config/index.js';
import { type PruneCandidate, pruneAll, versionsToPrune } from '../src/services/versions/pruning.js';
import { purgeExpiredTrash } from '../src/services/versions/trash.js';
import { startWorkers } from '../src/workers/main.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const DAY = 24 * 3600 * 1000;

describe('version history: versions, pins, rollback, pruning, trash, counts', () => {
  let stack: Stack;
  let api: Client;
  let userId: string;
  let crambin: string;

  beforeAll(async () => {
    stack = await startStack();
    const user = await userFactory(stack.ctx);
    userId = user.id;
    api = client(stack.url, user.token);
    crambin = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
  });
  afterAll(() => stack?.stop());

  /** Crambin with a distinct title: different bytes, same atoms. */
  const variant = (label: string) => crambin.replace(/^TITLE {5}.*$/m, `TITLE     CRAMBIN ${label}`);

  async function project(name: string, pruning?: { keepLast?: number | null; keepDays?: number | null }) {
    const response = await api.post('/v1/projects', { name, ...(pruning ? { pruning } : {}) });
    expect(response.status).toBe(201);
    return response.body.id as string;
  }

  async function create(projectId: string, content: string, name = 'crambin.pdb') {
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content }, {}, { prefer: 'wait=30' });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.structure.id as string;
  }

  async function addVersion(id: string, content: string, message?: string, name = 'crambin.pdb') {
    const response = await api.upload(`/v1/structures/${id}/versions`, { name, content }, message ? { message } : {}, { prefer: 'wait=30' });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.structure.currentVersion;
  }

  const numbers = async (id: string) => (await api.get(`/v1/structures/${id}/versions?limit=500`)).body.items.map((v: { number: number }) => v.number);

  async function blobRow(hash: string) {
    const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from blobs where sha256 = ?', [hash]);
    return Number(row.n);
  }
  const blobFile = (hash: string) =>
    fs.access(stack.ctx.blobs.location(hash)).then(
      () => true,
      () => false,
    );

  it('records each version with author, message, file name and summary; lists them page by page; serves any of them', async () => {
    const projectId = await project('versions');
    const id = await create(projectId, variant('ONE'), 'one.pdb');
    const second = await addVersion(id, variant('TWO'), 'second pass', 'two.pdb');
    expect(second).toMatchObject({ number: 2, message: 'second pass', filename: 'two.pdb', author: userId, pinned: false, sha256: sha256(variant('TWO')) });
    expect(second.summary).toMatchObject({ atoms: 327, title: expect.stringMatching(/^CRAMBIN TWO /) });
    await addVersion(id, variant('THREE'));

    const page1 = await api.get(`/v1/structures/${id}/versions?limit=2`);
    expect(page1.body.items.map((v: { number: number }) => v.number)).toEqual([3, 2]);
    const page2 = await api.get(`/v1/structures/${id}/versions?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((v: { number: number }) => v.number)).toEqual([1]);
    expect(page2.body.nextCursor).toBeNull();
    const one = await api.get(`/v1/structures/${id}/versions/1`);
    expect(one.body).toMatchObject({ number: 1, filename: 'one.pdb', author: userId, message: null, size: variant('ONE').length });
    expect((await api.get(`/v1/structures/${id}/versions/7`)).status).toBe(404);
    const download = await api.raw(`/v1/structures/${id}/download?version=2`);
    expect(await download.text()).toBe(variant('TWO'));
  });

  it('pins and unpins a version', async () => {
    const id = await create(await project('pins'), variant('PIN'));
    const pinned = await api.patch(`/v1/structures/${id}/versions/1`, { pinned: true });
    expect(pinned.status).toBe(200);
    expect(pinned.body).toMatchObject({ number: 1, pinned: true });
    expect((await api.get(`/v1/structures/${id}/versions/1`)).body.pinned).toBe(true);
    expect((await api.patch(`/v1/structures/${id}/versions/1`, { pinned: false })).body.pinned).toBe(false);
    expect((await api.patch(`/v1/structures/${id}/versions/5`, { pinned: true })).status).toBe(404);
    const bad = await api.patch(`/v1/structures/${id}/versions/1`, { pinned: 'yes' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('rolls back by making a new version with the old content; history stays', async () => {
    const projectId = await project('rollback');
    const id = await create(projectId, variant('ORIGINAL'));
    await addVersion(id, variant('BROKEN'), 'oops');
    const [{ n: blobsBefore }] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from blobs');

    const rolled = await api.post(`/v1/structures/${id}/rollback`, { version: 1, message: 'the refinement was wrong' });
    expect(rolled.status, JSON.stringify(rolled.body)).toBe(201);
    expect(rolled.headers.get('location')).toBe(`/v1/structures/${id}/versions/3`);
    expect(rolled.body.version).toMatchObject({
      number: 3,
      sha256: sha256(variant('ORIGINAL')),
      message: 'Rolled back to version 1: the refinement was wrong',
      author: userId,
    });
    expect(rolled.body.structure.currentVersion.number).toBe(3);
    expect(await numbers(id)).toEqual([3, 2, 1]);
    expect((await api.get(`/v1/structures/${id}/versions/2`)).body.sha256).toBe(sha256(variant('BROKEN')));
    expect(await (await api.raw(`/v1/structures/${id}/download`)).text()).toBe(variant('ORIGINAL'));
    const [{ n: blobsAfter }] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from blobs');
    expect(blobsAfter).toBe(blobsBefore); // same bytes, no new blob

    const again = await api.post(`/v1/structures/${id}/rollback`, { version: 3 });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_current');
    expect((await api.post(`/v1/structures/${id}/rollback`, { version: 42 })).status).toBe(404);
    expect((await api.post(`/v1/structures/${id}/rollback`, {})).status).toBe(400);
    // The index follows: search shows the rolled-back title.
    await expect
      .poll(async () => (await api.get('/v1/search?q=ORIGINAL')).body.items.map((i: { structure: { id: string } }) => i.structure.id), { timeout: 10_000 })
      .toContain(id);
  });

  it('decides what a policy prunes: count and age rules keep what either keeps; pinned and current always stay', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const version = (number: number, ageDays: number, pinned = false): PruneCandidate => ({
      id: `v${number}`,
      number,
      blob: `b${number}`,
      pinned,
      createdAt: new Date(now.getTime() - ageDays * DAY),
    });
    const versions = [version(1, 100, true), version(2, 90), version(3, 40), version(4, 5), version(5, 1)];
    const pruned = (policy: { keepLast: number | null; keepDays: number | null }, current = 'v5') =>
      versionsToPrune(versions, current, policy, now).map((v) => v.number);
    expect(pruned({ keepLast: null, keepDays: null })).toEqual([]);
    expect(pruned({ keepLast: 2, keepDays: null })).toEqual([3, 2]);
    expect(pruned({ keepLast: null, keepDays: 30 })).toEqual([3, 2]);
    expect(pruned({ keepLast: null, keepDays: 60 })).toEqual([2]);
    expect(pruned({ keepLast: 1, keepDays: 2 })).toEqual([4, 3, 2]);
    expect(pruned({ keepLast: 1, keepDays: null }, 'v2')).toEqual([4, 3]); // the newest stays even when another is current
    expect(pruned({ keepLast: null, keepDays: 0 })).toEqual([4, 3, 2]);
  });

  it('prunes by the project policy: when the policy is set, after each new version, and in the periodic pass; blobs and usage drop', async () => {
    const projectId = await project('pruning');
    const id = await create(projectId, variant('P1'));
    for (const label of ['P2', 'P3', 'P4', 'P5']) await addVersion(id, variant(label));
    await api.patch(`/v1/structures/${id}/versions/1`, { pinned: true });
    // Another structure holds the bytes of version 2: pruning must not take them from it.
    const sharing = await create(projectId, variant('P2'), 'shared.pdb');
    const usedBefore = (await api.get(`/v1/projects/${projectId}`)).body.usedBytes;
    const usageBefore = (await api.get('/v1/usage')).body;

    const patched = await api.patch(`/v1/projects/${projectId}`, { pruning: { keepLast: 2 } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.pruning).toEqual({ keepLast: 2, keepDays: null });
    expect(await numbers(id)).toEqual([5, 4, 1]);
    expect(await blobRow(sha256(variant('P3')))).toBe(0);
    expect(await blobFile(sha256(variant('P3')))).toBe(false);
    expect(await blobRow(sha256(variant('P2')))).toBe(1); // still version 1 of the sharing structure
    expect(await blobFile(sha256(variant('P2')))).toBe(true);
    const usedAfter = (await api.get(`/v1/projects/${projectId}`)).body.usedBytes;
    expect(usedAfter).toBe(usedBefore - variant('P3').length);
    const usageAfter = (await api.get('/v1/usage')).body;
    expect(usageAfter.usedBytes).toBe(usageBefore.usedBytes - variant('P3').length);
    expect(usageAfter.breakdown.history).toBe(usageBefore.breakdown.history - variant('P3').length);
    // A diff cached for a pruned blob goes with it.
    expect((await api.get(`/v1/structures/${id}/diff?from=4&to=5`, { prefer: 'wait=30' })).status).toBe(200);

    // The snapshot job applies the policy to each new version.
    await addVersion(id, variant('P6'));
    expect(await numbers(id)).toEqual([6, 5, 1]);
    expect(await blobRow(sha256(variant('P4')))).toBe(0);
    expect(await numbers(sharing)).toEqual([1]);

    // The periodic pass expires by age without any upload: keep only versions younger than 1 day, checked 2 days from now.
    await api.patch(`/v1/projects/${projectId}`, { pruning: { keepLast: null, keepDays: 1 } });
    expect(await numbers(id)).toEqual([6, 5, 1]);
    const pass = await pruneAll(stack.ctx.orm.em.fork(), stack.ctx.blobs, new Date(Date.now() + 2 * DAY));
    expect(pass.versions).toBeGreaterThanOrEqual(1);
    expect(await numbers(id)).toEqual([6, 1]); // current and pinned stay
    expect(await numbers(sharing)).toEqual([1]); // its only version is current
    expect(await blobRow(sha256(variant('P5')))).toBe(0);
    const [diffs] = await stack.ctx.orm.em
      .fork()
      .execute<{ n: string }[]>('select count(*) as n from version_diffs where to_blob_sha256 = ?', [sha256(variant('P5'))]);
    expect(Number(diffs.n)).toBe(0);
    expect((await api.patch(`/v1/projects/${projectId}`, { pruning: { keepLast: 0 } })).status).toBe(400);
  });

  it('moves to the trash, lists the trash page by page, restores, and purges rows and blobs (versions and draft)', async () => {
    const projectId = await project('trash');
    const ids = [await create(projectId, variant('T1')), await create(projectId, variant('T2')), await create(projectId, variant('T3'))];
    await addVersion(ids[0], variant('T1b'));
    const draft = await api.raw(`/v1/structures/${ids[0]}/draft?filename=t1-draft.pdb`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: variant('T1 DRAFT'),
    });
    expect(draft.status).toBe(200);
    for (const id of ids) expect((await api.delete(`/v1/structures/${id}`)).status).toBe(204);

    const listed = (await api.get(`/v1/structures?project=${projectId}`)).body.items;
    expect(listed).toEqual([]);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api.get(`/v1/trash?project=${projectId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      for (const item of page.body.items) {
        expect(item.deletedAt).toBeTruthy();
        expect(new Date(item.purgeAt).getTime() - new Date(item.deletedAt).getTime()).toBe(30 * DAY);
      }
      seen.push(...page.body.items.map((s: { id: string }) => s.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...ids].sort());
    // Trashed still counts in usage until purged.
    expect((await api.get(`/v1/projects/${projectId}`)).body.usedBytes).toBeGreaterThan(0);

    const restored = await api.post(`/v1/structures/${ids[2]}/restore`);
    expect(restored.status).toBe(200);
    expect(restored.body.deletedAt).toBeNull();
    expect((await api.get(`/v1/trash?project=${projectId}`)).body.items.map((s: { id: string }) => s.id).sort()).toEqual([ids[0], ids[1]].sort());
    await expect.poll(async () => (await api.get('/v1/search?q=T3')).body.total, { timeout: 10_000 }).toBe(1);

    const purged = await api.raw(`/v1/structures/${ids[0]}?purge=true`, { method: 'DELETE' });
    expect(purged.status).toBe(204);
    expect((await api.get(`/v1/structures/${ids[0]}`)).status).toBe(404);
    for (const label of ['T1', 'T1b', 'T1 DRAFT']) {
      expect(await blobRow(sha256(variant(label)))).toBe(0);
      expect(await blobFile(sha256(variant(label)))).toBe(false);
    }
    expect(await blobRow(sha256(variant('T2')))).toBe(1);

    // Expiry: not yet at 30 days; purged (and dropped from search) once past them.
    const em = stack.ctx.orm.em.fork();
    expect((await purgeExpiredTrash(em, stack.ctx.blobs, 30, stack.ctx.queues)).purged).not.toContain(ids[1]);
    const expired = await purgeExpiredTrash(em, stack.ctx.blobs, 30, stack.ctx.queues, new Date(Date.now() + 31 * DAY));
    expect(expired.purged).toContain(ids[1]);
    expect(expired.purged).not.toContain(ids[2]); // restored
    expect((await api.get(`/v1/structures/${ids[1]}`)).status).toBe(404);
    expect(await blobRow(sha256(variant('T2')))).toBe(0);
    expect((await api.get(`/v1/trash?project=${projectId}`)).body.items).toEqual([]);
    await expect
      .poll(async () => Number((await em.execute<{ n: string }[]>('select count(*) as n from search_documents where structure_id = ?', [ids[1]]))[0].n), {
        timeout: 10_000,
      })
      .toBe(0);
    expect((await api.delete('/v1/structures/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('never gives two versions the same number, whatever arrives at once (two worker sets, uploads and rollbacks)', async () => {
    const projectId = await project('concurrency');
    const id = await create(projectId, variant('C0'));
    await addVersion(id, variant('C00'));
    const extra = await startWorkers(stack.ctx, QUEUE_NAMES);
    try {
      const uploads = Array.from({ length: 10 }, (_, i) => addVersion(id, variant(`C${i + 1}`)));
      const rollbacks = Array.from({ length: 3 }, () => api.post(`/v1/structures/${id}/rollback`, { version: 1 }));
      const results = await Promise.all([...uploads, ...rollbacks]);
      const rolled = results.slice(10) as { status: number }[];
      // Version 1 is never current here, so every rollback makes a version.
      expect(rolled.every((r) => r.status === 201)).toBe(true);
    } finally {
      await extra.close();
    }
    const all: number[] = await numbers(id);
    expect(all).toHaveLength(15);
    expect(new Set(all).size).toBe(15);
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    const current = (await api.get(`/v1/structures/${id}`)).body.currentVersion.number;
    expect(current).toBe(15);
  });

  it('documents the history routes in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${stack.url}/docs/openapi.json`)).json()) as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/structures/{id}/diff', '/v1/structures/{id}/rollback', '/v1/trash']));
    expect(Object.keys(doc.paths['/v1/structures/{id}/versions/{n}'])).toEqual(expect.arrayContaining(['get', 'patch']));
    expect(doc.paths['/v1/structures/{id}/diff'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['from', 'to', 'moveThreshold', 'bfactorThreshold', 'occupancyThreshold', 'limit']),
    );
  });

  it('counts views and full downloads, cheaply, and shows them on the structure', async () => {
    const id = await create(await project('counts'), variant('COUNT'));
    await api.get(`/v1/structures/${id}`);
    await api.get(`/v1/structures/${id}`);
    for (let i = 0; i < 3; i++) await (await api.raw(`/v1/structures/${id}/download`)).arrayBuffer();
    await (await api.raw(`/v1/structures/${id}/download`, { headers: { range: 'bytes=0-9' } })).arrayBuffer();
    const shown = await api.get(`/v1/structures/${id}`);
    expect(shown.body.viewCount).toBe(3); // this read counts too
    expect(shown.body.downloadCount).toBe(3); // a range request is part of a download, not another one
  });
});
