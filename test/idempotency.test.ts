import fs from 'node:fs/promises';
import path from 'node:path';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnginePool } from '../src/engines/pool.js';
import type { JobContext, JobHandler } from '../src/jobs/define.js';
import { ingestHandler } from '../src/jobs/handlers/ingest.js';
import { indexHandler } from '../src/jobs/handlers/searchIndex.js';
import { snapshotHandler } from '../src/jobs/handlers/snapshot.js';
import { validateHandler } from '../src/jobs/handlers/validate.js';
import { CpuPool } from '../src/pool/cpuPool.js';
import type { LocalStaging } from '../src/storage/staging.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * BullMQ delivers at least once. Each handler here runs twice on the same input (no workers are
 * running: the test drives them) and the state after the second run must equal the state after the first.
 */
describe('job handlers are idempotent', () => {
  let stack: Stack;
  let cpu: CpuPool;
  let engines: EnginePool;
  let user: TestUser;
  let api: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack({ workers: false });
    cpu = new CpuPool(1, 60_000, 2048);
    engines = new EnginePool(stack.ctx.engineCatalog, stack.ctx.config.engines, stack.ctx.log);
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'replays' })).body.id;
  });
  afterAll(async () => {
    await cpu?.close();
    await stack?.stop();
  });

  /** Everything a handler may touch, as plain data. */
  async function state(uploadId: string) {
    const em = stack.ctx.orm.em.fork();
    const [upload] = await em.execute<any[]>('select state, blob_sha256, format, summary, version, error, structure_id from uploads where id = ?', [uploadId]);
    const structures = await em.execute<any[]>('select id, name, kind, tags, metadata, current_version_id from structures where owner_id = ? order by id', [
      user.id,
    ]);
    const versions = await em.execute<any[]>(
      'select v.id, v.number, v.blob_sha256 from structure_versions v join structures s on s.id = v.structure_id where s.owner_id = ? order by v.number',
      [user.id],
    );
    const blobs = await em.execute<any[]>('select sha256, size from blobs order by sha256');
    const documents = await em.execute<any[]>('select structure_id, name, tags, atoms, body from search_documents where owner_id = ?', [user.id]);
    const jobs: Record<string, string[]> = {};
    for (const [name, queue] of Object.entries(stack.ctx.queues)) jobs[name] = (await queue.getJobs(['waiting', 'delayed'])).map((j) => j.id as string).sort();
    const blobFiles = await fs.readdir(path.join(stack.ctx.config.blobDir, 'sha256'), { recursive: true }).catch(() => []);
    return { upload, structures, versions, blobs, documents, jobs, blobFiles: blobFiles.length, staging: await stack.ctx.staging.list() };
  }

  async function runTwice<D>(definition: JobHandler<D>, data: D) {
    const job = await Job.create(stack.ctx.queues[definition.queue], definition.name, data as object);
    const ctx = (): JobContext => ({ ...stack.ctx, cpu, engines, em: stack.ctx.orm.em.fork(), job });
    const uploadId = (data as { uploadId: string }).uploadId;
    await definition.handle(data, ctx());
    const once = await state(uploadId);
    await definition.handle(data, ctx());
    const twice = await state(uploadId);
    expect(twice).toEqual(once);
    return once;
  }

  it('ingest, validate, snapshot and index each leave the same state when run twice', async () => {
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: bytes }, { tags: 'replayed' });
    expect(accepted.status).toBe(202);
    const data = { uploadId: accepted.body.upload.id as string, ownerId: user.id };

    const afterIngest = await runTwice(ingestHandler, data);
    expect(afterIngest.upload).toMatchObject({ state: 'processing', format: 'pdb' });
    expect(afterIngest.jobs.validate).toEqual([`validate-${data.uploadId}`]);
    expect(afterIngest.staging).toEqual([]);

    const afterValidate = await runTwice(validateHandler, data);
    expect(afterValidate.upload.summary.atoms).toBe(327);
    expect(afterValidate.jobs.snapshot).toEqual([`snapshot-${data.uploadId}`]);

    const afterSnapshot = await runTwice(snapshotHandler, data);
    expect(afterSnapshot.versions).toHaveLength(1);
    expect(afterSnapshot.upload).toMatchObject({ state: 'stored', version: 1 });

    const indexData = { structureId: afterSnapshot.upload.structure_id as string, ownerId: user.id, uploadId: data.uploadId };
    const afterIndex = await runTwice(indexHandler, indexData);
    expect(afterIndex.documents).toHaveLength(1);
    expect(afterIndex.documents[0].tags).toEqual(['replayed']);
  });

  it('two snapshot runs at the same moment still make one version', async () => {
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1CRN.cif'));
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.cif', content: bytes });
    const data = { uploadId: accepted.body.upload.id as string, ownerId: user.id };
    const job = await Job.create(stack.ctx.queues.ingest, 'ingest', data);
    const ctx = (): JobContext => ({ ...stack.ctx, cpu, engines, em: stack.ctx.orm.em.fork(), job });
    await ingestHandler.handle(data, ctx());
    await validateHandler.handle(data, ctx());
    await Promise.all([snapshotHandler.handle(data, ctx()), snapshotHandler.handle(data, ctx()), snapshotHandler.handle(data, ctx())]);
    const { versions, upload } = await state(data.uploadId);
    expect(versions.filter((v: { blob_sha256: string }) => v.blob_sha256 === upload.blob_sha256)).toHaveLength(1);
  });

  it('concurrent versions of one structure get distinct consecutive numbers', async () => {
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const first = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'base.pdb', content: bytes });
    const ctx = (job: Job): JobContext => ({ ...stack.ctx, cpu, engines, em: stack.ctx.orm.em.fork(), job });
    const pipeline = async (uploadId: string) => {
      const data = { uploadId, ownerId: user.id };
      const job = await Job.create(stack.ctx.queues.ingest, 'ingest', data);
      await ingestHandler.handle(data, ctx(job));
      await validateHandler.handle(data, ctx(job));
      return data;
    };
    await snapshotHandler.handle(await pipeline(first.body.upload.id), ctx(await Job.create(stack.ctx.queues.snapshot, 'snapshot', {})));
    const structureId = first.body.structure.id;
    const uploads = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const edited = Buffer.from(`${bytes.toString('latin1')}REMARK 999 EDIT ${i}\n`, 'latin1');
        const response = await api.upload(`/v1/structures/${structureId}/versions`, { name: `v${i}.pdb`, content: edited });
        return pipeline(response.body.upload.id);
      }),
    );
    const job = await Job.create(stack.ctx.queues.snapshot, 'snapshot', {});
    await Promise.all(uploads.map((data) => snapshotHandler.handle(data, ctx(job))));
    const numbers = (
      await stack.ctx.orm.em.fork().execute<{ number: number }[]>('select number from structure_versions where structure_id = ? order by number', [structureId])
    ).map((r: { number: number }) => r.number);
    expect(numbers).toEqual([1, 2, 3, 4, 5]);
  });

  it('notices a staged file that changed after it was received, and fails the upload instead of storing it', async () => {
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: bytes });
    const uploadId = accepted.body.upload.id as string;
    const staged = (stack.ctx.staging as LocalStaging).file(uploadId);
    const corrupted = Buffer.from(bytes);
    corrupted[500] ^= 0x01;
    await fs.writeFile(staged, corrupted);
    const job = await Job.create(stack.ctx.queues.ingest, 'ingest', { uploadId, ownerId: user.id });
    await expect(ingestHandler.handle({ uploadId, ownerId: user.id }, { ...stack.ctx, cpu, engines, em: stack.ctx.orm.em.fork(), job })).rejects.toThrow(
      /no longer matches/,
    );
    const upload = (await api.get(`/v1/uploads/${uploadId}`)).body;
    expect(upload.state).toBe('failed');
    expect(upload.error.code).toBe('staging_corrupted');
    expect(await stack.ctx.staging.exists(uploadId)).toBe(false);
  });
});
