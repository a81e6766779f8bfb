import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { indexHandler } from '../src/jobs/handlers/searchIndex.js';
import { computeUsage } from '../src/services/quota/usage.js';
import { runUploadBatch } from '../src/services/upload/bulk.js';
import { runUploadPipeline } from '../src/services/upload/pipeline.js';
import { client, type TestUser, userFactory } from './helpers/factories.js';
import { stageHarness } from './helpers/stages.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

/**
 * runUploadBatch is the bulk form of the upload stages: for the same files it must leave exactly
 * what the one-by-one stages leave (states, refusals, versions, summaries, charges), and running it
 * again must change nothing. No workers run: the test drives the stages, as a worker's job would.
 */
describe('bulk upload stages', () => {
  const harness = stageHarness();
  const context = harness.context;

  /** The sha256 of every file the mix uploads. */
  const mixHashes = new Set<string>();

  /** The same mix of files for each user: good ones of several formats, a gzip, a duplicate, broken ones. */
  async function uploadMix(user: TestUser): Promise<string[]> {
    const api = client(harness.stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'mix' })).body.id;
    const pdb = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
    const files: { name: string; content: Buffer }[] = [
      { name: '1crn.pdb', content: pdb },
      { name: '1crn-again.pdb', content: pdb }, // the same bytes twice: charged once
      { name: '1crn.cif', content: await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif')) },
      { name: '1crn.cif.gz', content: await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif.gz')) },
      { name: 'aspirin.sdf', content: await fs.readFile(path.join(FIXTURES, 'chemfiles_aspirin.sdf')) },
      { name: 'imatinib.mol2', content: await fs.readFile(path.join(FIXTURES, 'chemfiles_imatinib.mol2')) },
      { name: 'named.pdb', content: Buffer.from(`${pdb.toString('latin1')}REMARK 999 NAMED\n`, 'latin1') },
      { name: 'no-atoms.pdb', content: Buffer.from('HEADER    NOTHING HERE\nEND\n') },
      {
        name: 'truncated.sdf',
        content: Buffer.from('aspirin\n  made by hand\n\n 21 21  0  0  0  0  0  0  0  0999 V2000\n    1.2333    0.5540    0.7792 O   0\n'),
      },
      { name: 'notes.txt', content: Buffer.from('These are my notes, not a structure.\n'.repeat(10)) },
    ];
    const ids: string[] = [];
    for (const file of files) mixHashes.add(createHash('sha256').update(file.content).digest('hex'));
    for (const file of files) {
      const fields: Record<string, string> = file.name === 'named.pdb' ? { name: 'Crambin, named', tags: 'a,b', metadata: '{"lab":"x"}' } : {};
      const response = await api.upload(`/v1/projects/${projectId}/structures`, file, fields);
      if (response.status === 202) ids.push(response.body.upload.id);
      else expect(response.status).toBe(415); // refused at the door, like notes.txt: never staged
    }
    return ids;
  }

  async function outcome(user: TestUser, uploadIds: string[]) {
    const em = harness.stack.ctx.orm.em.fork();
    const uploads = await em.execute<any[]>(
      `select u.filename, u.state, u.format, u.kind, u.version, u.error, u.summary->>'atoms' as atoms, u.validation->'warnings' as warnings
         from uploads u where u.id in (select jsonb_array_elements_text(?::jsonb)::uuid) order by u.filename`,
      [JSON.stringify(uploadIds)],
    );
    const structures = await em.execute<any[]>(
      `select s.name, s.kind, s.tags, s.metadata, v.number, v.format, v.filename, v.blob_sha256, v.summary, s.current_version_id = v.id as current
         from structures s join structure_versions v on v.structure_id = s.id where s.owner_id = ? order by v.filename`,
      [user.id],
    );
    const [usage] = await em.execute<{ used_bytes: string }[]>('select used_bytes from user_usage where user_id = ?', [user.id]);
    const reservations = await em.execute<any[]>('select * from quota_reservations where owner_id = ?', [user.id]);
    // Blobs of the mix's contents that no version holds: a refused file's bytes must not stay behind.
    const strayBlobs = await em.execute<any[]>(
      `select b.sha256 from blobs b where b.sha256 = any(?::text[])
          and not exists (select 1 from structure_versions v where v.blob_sha256 = b.sha256)`,
      [`{${[...mixHashes].join(',')}}`],
    );
    return { uploads, structures, usedBytes: Number(usage?.used_bytes ?? 0), reservations, strayBlobs, staging: await harness.stack.ctx.staging.list() };
  }

  it('leaves what the one-by-one stages leave, and a second run changes nothing', async () => {
    const single = await userFactory(harness.stack.ctx);
    const bulk = await userFactory(harness.stack.ctx);
    const singleIds = await uploadMix(single);
    const bulkIds = await uploadMix(bulk);
    expect(bulkIds.length).toBe(9);

    for (const uploadId of singleIds) await runUploadPipeline(await context(), { uploadId, ownerId: single.id });
    const states = await runUploadBatch(await context(), bulkIds, 'test');
    expect([...states.values()].sort()).toEqual(['rejected', 'rejected', 'stored', 'stored', 'stored', 'stored', 'stored', 'stored', 'stored']);

    const one = await outcome(single, singleIds);
    const many = await outcome(bulk, bulkIds);
    expect(many.uploads).toEqual(one.uploads);
    expect(many.structures).toEqual(one.structures);
    expect(many.structures.find((s: any) => s.filename === 'named.pdb')).toMatchObject({ name: 'Crambin, named', tags: ['a', 'b'], metadata: { lab: 'x' } });
    expect(many.usedBytes).toBe(one.usedBytes);
    // The charge is the truth recomputed from scratch, with the duplicate counted once.
    expect(many.usedBytes).toBe((await computeUsage(harness.stack.ctx.orm.em.fork(), bulk.id)).get(bulk.id)?.usedBytes);
    expect(many.reservations).toEqual([]);
    expect(many.strayBlobs).toEqual([]);
    expect(many.staging).toEqual([]);

    await runUploadBatch(await context(), bulkIds, 'test');
    expect(await outcome(bulk, bulkIds)).toEqual(many);

    // One index job for the chunk makes every stored structure searchable and marks its upload.
    const [indexing] = (await harness.stack.ctx.queues.index.getJobs(['waiting'])).filter((job) =>
      (job.data.uploadIds ?? []).some((id: string) => bulkIds.includes(id)),
    );
    expect(indexing.data.structureIds).toHaveLength(7);
    await indexHandler.handle(indexing.data, await context());
    const em = harness.stack.ctx.orm.em.fork();
    const [{ n: documents }] = await em.execute<{ n: string }[]>('select count(*) as n from search_documents where owner_id = ?', [bulk.id]);
    expect(Number(documents)).toBe(7);
    const [{ n: unindexed }] = await em.execute<{ n: string }[]>(
      `select count(*) as n from uploads where owner_id = ? and state = 'stored' and indexed_at is null`,
      [bulk.id],
    );
    expect(Number(unindexed)).toBe(0);
  });

  it('refuses a compressed file that unpacks past the quota as the one-by-one stages do, leaving nothing', async () => {
    const gz = await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif.gz'));
    const refusedFor = async (bulk: boolean) => {
      const user = await userFactory(harness.stack.ctx, { quotaBytes: 30_000 }); // the .gz fits, its 56 KB of mmCIF do not
      const api = client(harness.stack.url, user.token);
      const projectId = (await api.post('/v1/projects', { name: 'tight' })).body.id;
      const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.cif.gz', content: gz });
      expect(accepted.status).toBe(202);
      const uploadId = accepted.body.upload.id as string;
      if (bulk) await runUploadBatch(await context(), [uploadId], 'quota');
      else await runUploadPipeline(await context(), { uploadId, ownerId: user.id }).catch(() => undefined);
      return outcome(user, [uploadId]);
    };
    const one = await refusedFor(false);
    const many = await refusedFor(true);
    expect(many.uploads).toHaveLength(1);
    expect(many.uploads[0]).toMatchObject({ state: 'rejected', error: { code: 'quota_exceeded' } });
    expect({ ...many.uploads[0], error: { ...many.uploads[0].error, details: undefined } }).toEqual({
      ...one.uploads[0],
      error: { ...one.uploads[0].error, details: undefined },
    });
    expect(many).toMatchObject({ structures: [], reservations: [], staging: [] });
  });

  it('resumes a chunk that stopped part-way: uploads already stored are not stored again', async () => {
    const user = await userFactory(harness.stack.ctx);
    const ids = await uploadMix(user);
    // A first delivery that got through three uploads one by one before its worker died.
    for (const uploadId of ids.slice(0, 3)) await runUploadPipeline(await context(), { uploadId, ownerId: user.id });
    await runUploadBatch(await context(), ids, 'resume');
    const after = await outcome(user, ids);
    expect(after.structures).toHaveLength(7);
    expect(new Set(after.structures.map((s: any) => s.filename)).size).toBe(7);
    expect(after.usedBytes).toBe((await computeUsage(harness.stack.ctx.orm.em.fork(), user.id)).get(user.id)?.usedBytes);
  });
});
