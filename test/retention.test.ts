import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupJob } from '../src/queue/jobs.js';
import { type Client, client, putDraft as saveDraft, storedStructure, type TestUser, userFactory } from './helpers/factories.js';
import { runJob } from './helpers/jobs.js';
import { type Stack, startStack } from './helpers/stack.js';

const DAY = 24 * 3600_000;
const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));

/**
 * The pieces other parts of molvault hand to the cleanup schedule (trash retention, draft expiry,
 * version pruning) run from the real cleanup job, and drafts are charged to and held against the quota.
 */
describe('retention through the cleanup schedule, and drafts under the quota', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;
  let pdb: Buffer;

  beforeAll(async () => {
    // Schedules that do not fire during the test: the test runs the cleanup job itself.
    stack = await startStack({ env: { CLEANUP_SCHEDULE: '0 0 1 1 *', GC_SCHEDULE: '0 0 1 1 *', USAGE_SCHEDULE: '0 0 1 1 *' } });
    user = await userFactory(stack.ctx, { quotaBytes: 400_000 });
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'retention' })).body.id;
    pdb = await fixture('ngl_1crn.pdb');
  });
  afterAll(() => stack?.stop());

  const newStructure = (name: string, content: Uint8Array) => storedStructure(api, projectId, name, content);
  const putDraft = (id: string, body: Uint8Array) => saveDraft(api, id, body);
  const storedUsage = async () => {
    const [row] = await stack.ctx.orm.em.fork().execute<{ used_bytes: string }[]>('select used_bytes from user_usage where user_id = ?', [user.id]);
    return Number(row?.used_bytes ?? 0);
  };

  it('charges a draft when it is saved and frees it when it is deleted', async () => {
    const id = await newStructure('draft-charge.pdb', pdb);
    const before = await storedUsage();
    const edited = Buffer.concat([pdb, Buffer.from('REMARK 999 EDITED\n')]);
    expect((await putDraft(id, edited)).status).toBe(200);
    expect(await storedUsage()).toBe(before + edited.length);
    expect((await api.delete(`/v1/structures/${id}/draft`)).status).toBe(204);
    expect(await storedUsage()).toBe(before);
  });

  it('refuses a draft that would pass the quota with 507 and keeps nothing of it', async () => {
    const id = await newStructure('draft-quota.pdb', pdb);
    const big = Buffer.alloc(800_000, 'REMARK 999 FILLER\n');
    const refused = await putDraft(id, big);
    expect(refused.status).toBe(507);
    expect(refused.body.error.code).toBe('quota_exceeded');
    const em = stack.ctx.orm.em.fork();
    expect(await em.execute('select 1 from drafts where structure_id = ?', [id])).toHaveLength(0);
    expect(await em.execute('select 1 from quota_reservations where owner_id = ?', [user.id])).toHaveLength(0);
    expect(await fs.readdir(path.join(stack.ctx.config.dataDir, 'staging')).catch(() => [])).toHaveLength(0);
  });

  it('purges trash past its retention and expired drafts from the cleanup job, and reports them in a dry run first', async () => {
    const trashed = await newStructure('old-trash.pdb', Buffer.concat([pdb, Buffer.from('REMARK 999 TRASH\n')]));
    const recent = await newStructure('recent-trash.pdb', Buffer.concat([pdb, Buffer.from('REMARK 999 RECENT\n')]));
    const drafted = await newStructure('old-draft.pdb', pdb);
    expect((await api.delete(`/v1/structures/${trashed}`)).status).toBe(204);
    expect((await api.delete(`/v1/structures/${recent}`)).status).toBe(204);
    expect((await putDraft(drafted, Buffer.concat([pdb, Buffer.from('REMARK 999 OLD DRAFT\n')]))).status).toBe(200);
    const em = stack.ctx.orm.em.fork();
    const retention = stack.ctx.config.trashRetentionDays;
    await em.execute('update structures set deleted_at = ? where id = ?', [new Date(Date.now() - (retention + 1) * DAY), trashed]);
    await em.execute('update drafts set updated_at = ? where structure_id = ?', [
      new Date(Date.now() - (stack.ctx.config.draftRetentionDays + 1) * DAY),
      drafted,
    ]);

    const dry = await runJob(stack.ctx, cleanupJob, { dryRun: true, stamp: 'retention-dry' });
    const step = (report: any, name: string) => report.steps.find((s: any) => s.name === name);
    expect(step(dry, 'expired trash').removed).toBe(1);
    expect(step(dry, 'expired drafts').removed).toBe(1);
    expect(await em.execute('select 1 from structures where id = ?', [trashed])).toHaveLength(1);

    const report = await runJob(stack.ctx, cleanupJob, { stamp: 'retention-real' });
    expect(step(report, 'expired trash').removed).toBe(1);
    expect(step(report, 'expired drafts').removed).toBe(1);
    expect(await em.execute('select 1 from structures where id = ?', [trashed])).toHaveLength(0);
    expect(await em.execute('select 1 from structures where id = ?', [recent])).toHaveLength(1);
    expect(await em.execute('select 1 from drafts where structure_id = ?', [drafted])).toHaveLength(0);
    // The stored figure the quota check reads follows: the usage endpoint recomputes and must agree.
    const stored = await storedUsage();
    expect((await api.get('/v1/usage')).body.usedBytes).toBe(stored);
  });
});
