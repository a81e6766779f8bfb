import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStructureBytes } from '../src/formats/parse.js';
import { validateJob } from '../src/queue/jobs.js';
import { type Client, client, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * A large uncompressed upload is parsed in a second pool thread while the first hashes it
 * (services/upload/ingest.ts, parseAlongside): its validation needs no second read of the file, and
 * an unsound file is refused before its bytes are stored.
 */
describe('a large upload parsed beside its ingest', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack();
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'large files' })).body.id;
  });
  afterAll(() => stack?.stop());

  /** Crambin's atoms as many models: a multi-model PDB of about `models` × 26 KB. */
  async function manyModels(models: number, tag: string): Promise<Buffer> {
    const text = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
    const atoms = text
      .split('\n')
      .filter((line) => line.startsWith('ATOM') || line.startsWith('HETATM'))
      .join('\n');
    const parts = [`HEADER    ${tag.padEnd(40)}\n`];
    for (let m = 1; m <= models; m++) parts.push(`MODEL     ${String(m).padStart(4)}\n${atoms}\nENDMDL\n`);
    parts.push('END\n');
    return Buffer.from(parts.join(''), 'latin1');
  }

  const validateResult = async (uploadId: string) =>
    (await stack.ctx.queues[validateJob.queue].getJob(validateJob.jobId({ uploadId, ownerId: user.id })))?.returnvalue;

  it('stores the summary the reader gives, and the validate stage finds it done', async () => {
    const content = await manyModels(200, 'ALONGSIDE');
    expect(content.length).toBeGreaterThan(4 * 1024 * 1024);
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'many models.pdb', content });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const done = await waitForUpload(api, accepted.body.upload.id, 120_000);
    expect(done.state).toBe('stored');
    const reference = await parseStructureBytes(content, 'pdb');
    if (!reference.ok) throw new Error('the reference parse refused the file');
    const [row] = await stack.ctx.orm.em.fork().execute<{ summary: unknown }[]>('select summary from uploads where id = ?', [accepted.body.upload.id]);
    expect(row?.summary).toEqual(JSON.parse(JSON.stringify(reference.summary)));
    expect((await api.get(`/v1/structures/${done.structureId}`)).body.currentVersion.summary).toMatchObject({ atoms: 327, models: 200 });
    expect(await validateResult(accepted.body.upload.id)).toEqual({ skipped: 'already validated' });
  }, 180_000);

  it('refuses an unsound large file with the line, before its bytes are stored', async () => {
    const before = await leftovers(stack.ctx, user.id);
    const good = (await manyModels(180, 'BROKEN')).toString('latin1');
    // An atom whose x coordinate is not a number, deep in the file.
    const lines = good.split('\n');
    const at = lines.findIndex((line, i) => i > lines.length / 2 && line.startsWith('ATOM'));
    lines[at] = `${lines[at]?.slice(0, 30)}  abc.def${lines[at]?.slice(38)}`;
    const content = Buffer.from(lines.join('\n'), 'latin1');
    const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'broken.pdb', content });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const done = await waitForUpload(api, accepted.body.upload.id, 120_000);
    expect(done.state).toBe('rejected');
    expect(JSON.stringify(done.error)).toMatch(new RegExp(`line ${at + 1}\\b`, 'i'));
    const after = await leftovers(stack.ctx, user.id);
    expect(after).toMatchObject({ structures: before.structures, versions: before.versions, blobFiles: before.blobFiles, tempFiles: 0, stagingEntries: 0 });
  }, 180_000);
});
