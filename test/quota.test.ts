import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageJob } from '../src/queue/jobs.js';
import { QuotaExceededError, releaseReservation, reserve } from '../src/services/quota/quota.js';
import { type Client, client, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { runJob } from './helpers/jobs.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));

/** A PDB of `atoms` atoms: a distinct file per seed, about 81 bytes an atom. */
function pdb(atoms: number, seed: string): Buffer {
  const line = (i: number) =>
    `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA A${String((i % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`;
  return Buffer.from(`REMARK   1 ${seed}\n${Array.from({ length: atoms }, (_, i) => line(i)).join('')}END\n`);
}

async function storedUsedBytes(stack: Stack, userId: string): Promise<number> {
  const [row] = await stack.ctx.orm.em.fork().execute<{ used_bytes: string }[]>('select used_bytes from user_usage where user_id = ?', [userId]);
  return Number(row?.used_bytes);
}

async function reservations(stack: Stack, userId: string): Promise<number> {
  const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from quota_reservations where owner_id = ?', [userId]);
  return Number(row.n);
}

/**
 * Sends a raw upload without Content-Length (chunked), `total` bytes in 64 KiB chunks, and stops
 * sending once the server answers. Resolves with the answer and how many bytes had been sent by then.
 */
function streamUpload(url: string, token: string, total: number): Promise<{ status: number; body: any; sentWhenAnswered: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const request = http.request(`${url}?filename=big.pdb`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    });
    const chunk = Buffer.alloc(64 * 1024, 'ATOM  ');
    request.on('response', (response) => {
      answered = true;
      const sentWhenAnswered = sent;
      const parts: Buffer[] = [];
      response.on('data', (part) => parts.push(part));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || 'null'), sentWhenAnswered }));
    });
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!request.write(chunk)) {
          request.once('drain', pump);
          return;
        }
      }
      if (!answered) request.end();
    };
    pump();
  });
}

describe('quotas and usage', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.stop());

  async function userWithProject(quotaBytes: number): Promise<{ user: TestUser; api: Client; projectId: string }> {
    const user = await userFactory(stack.ctx, { quotaBytes });
    const api = client(stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'quota' })).body.id;
    return { user, api, projectId };
  }

  it('refuses an upload with 507 while it streams, keeps none of it, and leaves nothing behind', async () => {
    const quota = 1024 * 1024;
    const { user, projectId } = await userWithProject(quota);
    const before = await leftovers(stack.ctx, user.id);
    const total = 64 * 1024 * 1024;
    const answer = await streamUpload(`${stack.url}/v1/projects/${projectId}/structures`, user.token, total);
    expect(answer.status).toBe(507);
    expect(answer.body.error.code).toBe('quota_exceeded');
    expect(answer.body.error.message).toMatch(/quota/);
    expect(answer.body.error.details).toMatchObject({ quotaBytes: quota, usedBytes: 0, reservedBytes: 0 });
    expect(answer.body.error.details.requestedBytes).toBeGreaterThan(quota);
    // Refused long before the 64 MB were sent: the server did not read (let alone store) the rest.
    expect(answer.sentWhenAnswered).toBeLessThan(total / 2);
    const after = await leftovers(stack.ctx, user.id);
    expect(after).toEqual({ ...before, stagingEntries: 0 });
    expect(await reservations(stack, user.id)).toBe(0);
    const [uploads] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from uploads where owner_id = ?', [user.id]);
    expect(Number(uploads.n)).toBe(0);
  });

  it('refuses at once when the declared size is over quota', async () => {
    const { user, api, projectId } = await userWithProject(10_000);
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: await fixture('ngl_1crn.pdb') });
    expect(response.status).toBe(507);
    expect(response.body.error.details).toMatchObject({ quotaBytes: 10_000, usedBytes: 0 });
    expect(await reservations(stack, user.id)).toBe(0);
    expect((await stack.ctx.staging.list()).length).toBe(0);
  });

  it('lets two concurrent uploads not together pass the quota', async () => {
    const a = pdb(1000, 'a');
    const b = pdb(1000, 'b');
    const { user, api, projectId } = await userWithProject(Math.round(a.length * 1.5));
    const answers = await Promise.all([
      api.upload(`/v1/projects/${projectId}/structures`, { name: 'a.pdb', content: a }, {}, { prefer: 'wait=30' }),
      api.upload(`/v1/projects/${projectId}/structures`, { name: 'b.pdb', content: b }, {}, { prefer: 'wait=30' }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([201, 507]);
    expect(await storedUsedBytes(stack, user.id)).toBe(a.length);
    const usage = (await api.get('/v1/usage')).body;
    expect(usage.usedBytes).toBe(a.length);
    expect(usage.reservedBytes).toBe(0);
    expect(await reservations(stack, user.id)).toBe(0);
  });

  it('grants exactly what fits when many reservations race for the last bytes', async () => {
    const { user } = await userWithProject(1000);
    const attempts = Array.from({ length: 20 }, () => randomUUID());
    const outcomes = await Promise.allSettled(attempts.map((uploadId) => reserve(stack.ctx.orm.em.fork(), { userId: user.id, uploadId, needed: 100 })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(10);
    const refused = outcomes.filter((o) => o.status === 'rejected');
    expect(refused).toHaveLength(10);
    for (const o of refused) expect((o as PromiseRejectedResult).reason).toBeInstanceOf(QuotaExceededError);
    const [row] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select sum(bytes) as n from quota_reservations where owner_id = ?', [user.id]);
    expect(Number(row.n)).toBe(1000);
    for (const uploadId of attempts) await releaseReservation(stack.ctx.orm.em.fork(), uploadId);
    expect(await reservations(stack, user.id)).toBe(0);
  });

  it('charges the same bytes once, however often they are stored', async () => {
    const bytes = await fixture('ngl_1crn.pdb');
    const { user, api, projectId } = await userWithProject(10 * 1024 * 1024);
    const first = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'one.pdb', content: bytes }, {}, { prefer: 'wait=30' });
    expect(first.status).toBe(201);
    const second = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'two.pdb', content: bytes }, {}, { prefer: 'wait=30' });
    expect(second.status).toBe(201);
    const again = await api.upload(`/v1/structures/${first.body.structure.id}/versions`, { name: 'one.pdb', content: bytes }, {}, { prefer: 'wait=30' });
    expect(again.status).toBe(201);
    // The figure the quota check reads, as the snapshots left it (GET /v1/usage recomputes it).
    expect(await storedUsedBytes(stack, user.id)).toBe(bytes.length);
    const usage = (await api.get('/v1/usage')).body;
    expect(usage).toMatchObject({ quotaBytes: 10 * 1024 * 1024, usedBytes: bytes.length, reservedBytes: 0 });
    expect(usage.breakdown).toMatchObject({ current: bytes.length, history: 0, trash: 0 });
    expect(usage.projects).toEqual([{ id: projectId, name: 'quota', usedBytes: bytes.length }]);
    expect(await reservations(stack, user.id)).toBe(0);
  });

  it('counts the trash until it is purged', async () => {
    const bytes = await fixture('ngl_1crn.pdb');
    const { api, projectId } = await userWithProject(10 * 1024 * 1024);
    const stored = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: bytes }, {}, { prefer: 'wait=30' });
    expect(stored.status).toBe(201);
    const id = stored.body.structure.id;
    expect((await api.delete(`/v1/structures/${id}`)).status).toBe(204);
    let usage = (await api.get('/v1/usage')).body;
    expect(usage.usedBytes).toBe(bytes.length);
    expect(usage.breakdown).toMatchObject({ current: 0, trash: bytes.length });
    expect((await api.delete(`/v1/structures/${id}?purge=true`)).status).toBe(204);
    usage = (await api.get('/v1/usage')).body;
    expect(usage.usedBytes).toBe(0);
    expect(usage.breakdown.trash).toBe(0);
  });

  it('refuses a compressed upload that unpacks past the quota, once its content is known', async () => {
    const gz = await fixture('ngl_1CRN.cif.gz');
    const { user, api, projectId } = await userWithProject(30_000); // the .gz fits, its 56 KB of mmCIF do not
    const answer = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.cif.gz', content: gz }, {}, { prefer: 'wait=30' });
    expect(answer.status).toBe(507);
    expect(answer.body.error).toMatchObject({ code: 'quota_exceeded', details: { quotaBytes: 30_000, requestedBytes: 55_925 } });
    const upload = await waitForUpload(api, answer.body.error.details.uploadId);
    expect(upload.state).toBe('rejected');
    expect(await reservations(stack, user.id)).toBe(0);
    expect(await leftovers(stack.ctx, user.id)).toMatchObject({ structures: 0, versions: 0, stagingEntries: 0, tempFiles: 0 });
  });

  it('recomputes a corrupted usage figure and says it corrected it', async () => {
    const bytes = await fixture('ngl_1crn.pdb');
    const { user, api, projectId } = await userWithProject(10 * 1024 * 1024);
    expect((await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: bytes }, {}, { prefer: 'wait=30' })).status).toBe(201);
    const em = stack.ctx.orm.em.fork();
    await em.execute(`update user_usage set used_bytes = 999999999, breakdown = '{"current": 999999999}' where user_id = ?`, [user.id]);
    const result = await runJob(stack.ctx, usageJob, { stamp: `test-${user.id}` });
    expect(result.drifted).toContainEqual(expect.objectContaining({ userId: user.id, storedBytes: 999999999, actualBytes: bytes.length }));
    const [row] = await em.execute<{ used_bytes: string; breakdown: Record<string, number> }[]>(
      'select used_bytes, breakdown from user_usage where user_id = ?',
      [user.id],
    );
    expect(Number(row.used_bytes)).toBe(bytes.length);
    expect(row.breakdown).toMatchObject({ current: bytes.length, history: 0, trash: 0 });
    // Run again: nothing left to correct for this user.
    const again = await runJob(stack.ctx, usageJob, { stamp: `test-again-${user.id}` });
    expect(again.drifted.map((d: { userId: string }) => d.userId)).not.toContain(user.id);
  });

  it('lets administrators change a quota, and nobody else', async () => {
    const admin = client(stack.url, (await userFactory(stack.ctx, { admin: true })).token);
    const { user, api } = await userWithProject(1000);
    expect((await api.patch(`/v1/admin/users/${user.id}`, { quotaBytes: 5000 })).status).toBe(403);
    const changed = await admin.patch(`/v1/admin/users/${user.id}`, { quotaBytes: '2MB' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id: user.id, quotaBytes: 2_000_000 });
    expect((await api.get('/v1/usage')).body.quotaBytes).toBe(2_000_000);
    const bad = await admin.patch(`/v1/admin/users/${user.id}`, { quotaBytes: 'lots' });
    expect(bad.status).toBe(400);
    const listed = await admin.get('/v1/admin/users?limit=500');
    expect(listed.body.items.map((u: { id: string }) => u.id)).toContain(user.id);
    // The usage job on demand: 202 and a job that finishes.
    expect((await api.post('/v1/admin/usage/recompute')).status).toBe(403);
    const recompute = await admin.post('/v1/admin/usage/recompute');
    expect(recompute.status).toBe(202);
    await expect.poll(async () => (await admin.get(`/v1/jobs/${recompute.body.job.id}`)).body.state, { timeout: 30_000, interval: 100 }).toBe('completed');
  });
});
