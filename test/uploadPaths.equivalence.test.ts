import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { computeUsage } from '../src/services/quota/usage.js';
import { runUploadBatch } from '../src/services/upload/bulk.js';
import { runUploadPipeline } from '../src/services/upload/pipeline.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { stageHarness } from './helpers/stages.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

/**
 * The one-by-one path (runUploadPipeline, what the upload jobs run) and the bulk path
 * (runUploadBatch, what an import chunk runs) on the same inputs: every case an upload can meet
 * after it was accepted — stored, refused for each reason the stages have, the same content twice,
 * over quota, the structure deleted meanwhile, a new version of a live structure, a staged file
 * lost — must leave the same rows, field by field, the same usage and the same refusals.
 */
describe('the one-by-one and the bulk upload paths', () => {
  const harness = stageHarness();
  const context = harness.context;

  async function accepted(api: Client, target: string, file: { name: string; content: Uint8Array }, fields: Record<string, string> = {}) {
    const response = await api.upload(target, file, fields);
    expect(response.status, `${file.name}: ${JSON.stringify(response.body)}`).toBe(202);
    return response.body.upload.id as string;
  }

  /** A structure made through the one-by-one path (the same for both users: it is the setting, not the case). */
  async function structureOf(user: TestUser, api: Client, projectId: string, name: string, content: Uint8Array) {
    const uploadId = await accepted(api, `/v1/projects/${projectId}/structures`, { name, content });
    expect(await runUploadPipeline(await context(), { uploadId, ownerId: user.id })).toBe('stored');
    const [row] = await harness.stack.ctx.orm.em.fork().execute<{ structure_id: string }[]>('select structure_id from uploads where id = ?', [uploadId]);
    return row.structure_id;
  }

  /** Every case, accepted by the API for this user; returns the upload ids and the file names by case. */
  async function acceptEveryCase(user: TestUser): Promise<string[]> {
    const api = client(harness.stack.url, user.token);
    const projectId = (await api.post('/v1/projects', { name: 'cases' })).body.id as string;
    const pdb = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
    const variant = (text: string) => Buffer.concat([pdb, Buffer.from(`REMARK 999 ${text}\n`, 'latin1')]);
    const kept = await structureOf(user, api, projectId, 'kept.pdb', variant('KEPT'));
    const doomed = await structureOf(user, api, projectId, 'doomed.pdb', variant('DOOMED'));
    const newStructure = `/v1/projects/${projectId}/structures`;
    const ids = [
      // Stored: several formats, a compressed one, a name and tags and metadata given.
      await accepted(api, newStructure, { name: '1crn.pdb', content: pdb }),
      await accepted(api, newStructure, { name: '1crn.cif', content: await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif')) }),
      await accepted(api, newStructure, { name: '1crn.cif.gz', content: await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif.gz')) }),
      await accepted(api, newStructure, { name: 'aspirin.sdf', content: await fs.readFile(path.join(FIXTURES, 'chemfiles_aspirin.sdf')) }),
      await accepted(api, newStructure, { name: 'named.pdb', content: variant('NAMED') }, { name: 'Crambin', tags: 'a,b', metadata: '{"lab":"x"}' }),
      // The same content twice: both stored, charged once.
      await accepted(api, newStructure, { name: 'twice-a.pdb', content: variant('TWICE') }),
      await accepted(api, newStructure, { name: 'twice-b.pdb', content: variant('TWICE') }),
      // Stored with a warning: the name says SDF, the content is PDB.
      await accepted(api, newStructure, { name: 'misnamed.sdf', content: variant('MISNAMED') }),
      // A new version of a live structure, renaming it, retagging it and merging metadata.
      await accepted(
        api,
        `/v1/structures/${kept}/versions`,
        { name: 'kept-v2.pdb', content: variant('KEPT 2') },
        {
          name: 'Kept, renamed',
          tags: 'c',
          metadata: '{"stage":"two"}',
          message: 'second',
        },
      ),
      // Refused by the stages, one file per reason.
      await accepted(api, newStructure, { name: 'text.pdb.gz', content: gzipSync(Buffer.from('These are my notes, not a structure.\n'.repeat(20))) }),
      await accepted(api, newStructure, { name: 'declared.pdb', content: variant('DECLARED') }, { format: 'sdf' }),
      await accepted(api, newStructure, { name: 'pretend.cxs', content: variant('PRETEND') }),
      await accepted(api, newStructure, { name: 'bomb.pdb.gz', content: gzipSync(Buffer.alloc(80_000_000, 0x20), { level: 9 }) }),
      await accepted(api, newStructure, { name: 'no-atoms.pdb', content: Buffer.from('HEADER    NOTHING HERE\nEND\n') }),
      await accepted(api, newStructure, {
        name: 'truncated.sdf',
        content: Buffer.from('aspirin\n  made by hand\n\n 21 21  0  0  0  0  0  0  0  0999 V2000\n    1.2333    0.5540    0.7792 O   0\n'),
      }),
      // Lost from staging before it was stored.
      await accepted(api, newStructure, { name: 'lost.pdb', content: variant('LOST') }),
      // A new version of a structure deleted before the version was stored.
      await accepted(api, `/v1/structures/${doomed}/versions`, { name: 'doomed-v2.pdb', content: variant('DOOMED 2') }),
    ];
    const [lost] = await harness.stack.ctx.orm.em
      .fork()
      .execute<{ id: string }[]>(`select id from uploads where id = any(?::uuid[]) and filename = 'lost.pdb'`, [`{${ids.join(',')}}`]);
    await harness.stack.ctx.staging.remove(lost.id);
    expect((await api.delete(`/v1/structures/${doomed}`)).status).toBe(204);
    return ids;
  }

  /** What the stages left for a user, without what differs by nature (ids, times, owners, how long a parse took). */
  async function leftFor(user: TestUser, uploadIds: string[]) {
    const em = harness.stack.ctx.orm.em.fork();
    const uploads = await em.execute<any[]>(
      `select u.filename, u.state, u.creates_structure, u.format_hint, u.format, u.compression, u.received_bytes, u.received_sha256, u.params,
              u.blob_sha256, u.kind, u.summary, u.validation - 'parseMs' as validation, u.error, u.version, u.indexed_at is null as unindexed,
              (select count(*) from quota_reservations r where r.upload_id = u.id)::int as reservations
         from uploads u where u.id = any(?::uuid[]) order by u.filename`,
      [`{${uploadIds.join(',')}}`],
    );
    const structures = await em.execute<any[]>(
      `select s.name, s.description, s.kind, s.tags, s.metadata, s.deleted_at is not null as deleted,
              (select v.filename from structure_versions v where v.id = s.current_version_id) as current
         from structures s where s.owner_id = ? order by s.name, 7`,
      [user.id],
    );
    const versions = await em.execute<any[]>(
      `select s.name as structure, v.number, v.format, v.filename, v.message, v.blob_sha256, v.summary, v.validation - 'parseMs' as validation, v.pinned,
              v.author_id = s.owner_id as by_owner, u.filename as upload
         from structure_versions v join structures s on s.id = v.structure_id left join uploads u on u.id = v.upload
        where s.owner_id = ? order by v.filename, v.number`,
      [user.id],
    );
    const [usage] = await em.execute<{ used_bytes: string }[]>('select used_bytes from user_usage where user_id = ?', [user.id]);
    const reservations = await em.execute<any[]>('select bytes from quota_reservations where owner_id = ?', [user.id]);
    const staged = (await harness.stack.ctx.staging.list()).filter((id) => uploadIds.includes(id));
    return { uploads, structures, versions, usedBytes: Number(usage?.used_bytes ?? 0), reservations, staged };
  }

  const refusals = (left: Awaited<ReturnType<typeof leftFor>>) =>
    Object.fromEntries(left.uploads.filter((u) => u.state !== 'stored').map((u) => [u.filename, `${u.state} ${u.error.status} ${u.error.code}`]));

  it('leave the same rows, usage and refusals for every case', async () => {
    const single = await userFactory(harness.stack.ctx);
    const bulk = await userFactory(harness.stack.ctx);
    const singleIds = await acceptEveryCase(single);
    const bulkIds = await acceptEveryCase(bulk);

    for (const uploadId of singleIds) await runUploadPipeline(await context(), { uploadId, ownerId: single.id });
    await runUploadBatch(await context(), bulkIds, 'equivalence');

    const one = await leftFor(single, singleIds);
    const many = await leftFor(bulk, bulkIds);
    // Every reason the stages refuse for is here, each with its status.
    expect(refusals(one)).toEqual({
      'bomb.pdb.gz': expect.stringMatching(/^rejected 413 /),
      'declared.pdb': 'rejected 415 format_mismatch',
      'doomed-v2.pdb': 'rejected 409 structure_deleted',
      'lost.pdb': 'failed 500 staging_lost',
      'no-atoms.pdb': expect.stringMatching(/^rejected 422 /),
      'pretend.cxs': 'rejected 415 not_a_session',
      'text.pdb.gz': 'rejected 415 unsupported_format',
      'truncated.sdf': expect.stringMatching(/^rejected 422 /),
    });
    expect(refusals(many)).toEqual(refusals(one));
    expect(many.uploads.length).toBe(one.uploads.length);
    for (const [i, upload] of one.uploads.entries()) {
      for (const field of Object.keys(upload)) {
        expect(many.uploads[i][field], `${upload.filename}: ${field}`).toEqual(upload[field]);
      }
    }
    expect(many.structures).toEqual(one.structures);
    expect(many.structures.find((s: any) => s.name === 'Kept, renamed')).toMatchObject({ tags: ['c'], current: 'kept-v2.pdb' });
    expect(many.versions).toEqual(one.versions);
    expect(many.versions.filter((v: any) => v.upload === 'misnamed.sdf')[0].validation.warnings[0].code).toBe('extension_mismatch');
    // Charged the same, the duplicate once, and the figure is the truth recomputed from scratch.
    expect(many.usedBytes).toBe(one.usedBytes);
    expect(many.usedBytes).toBe((await computeUsage(harness.stack.ctx.orm.em.fork(), bulk.id)).get(bulk.id)?.usedBytes);
    expect(one.reservations).toEqual([]);
    expect(many.reservations).toEqual([]);
    expect(many.staged).toEqual([]);
    expect(one.staged).toEqual([]);
  });

  it('refuse the same upload over quota, once its content is known, with the same numbers', async () => {
    const gz = await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif.gz'));
    const unpacked = (await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif'))).length;
    // Room for the bytes as sent, not for what they unpack to.
    const quotaBytes = gz.length + Math.floor((unpacked - gz.length) / 2);
    const results = [];
    for (const run of ['single', 'bulk'] as const) {
      const user = await userFactory(harness.stack.ctx, { quotaBytes });
      const api = client(harness.stack.url, user.token);
      const projectId = (await api.post('/v1/projects', { name: 'tight' })).body.id as string;
      const uploadId = await accepted(api, `/v1/projects/${projectId}/structures`, { name: '1crn.cif.gz', content: gz });
      if (run === 'single') await runUploadPipeline(await context(), { uploadId, ownerId: user.id });
      else await runUploadBatch(await context(), [uploadId], 'over-quota');
      results.push(await leftFor(user, [uploadId]));
    }
    const [one, many] = results;
    expect(one.uploads[0]).toMatchObject({ state: 'rejected', error: { status: 507, code: 'quota_exceeded' } });
    expect(one.uploads[0].error.details).toMatchObject({ quotaBytes, requestedBytes: unpacked });
    expect(many).toEqual(one);
  });
});
