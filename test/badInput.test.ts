import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Upload } from '../src/entities/Upload.js';
import { type Client, client, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]);

describe('bad input gets a clear answer and leaves nothing behind', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;
  /** Blob rows are shared by every test file of the run, so only a change counts. */
  let baselineBlobRows: number;
  const MAX = 200_000;

  beforeAll(async () => {
    stack = await startStack({ env: { MAX_UPLOAD_BYTES: String(MAX) } });
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'bad files' })).body.id;
    baselineBlobRows = (await leftovers(stack.ctx, user.id)).blobRows;
  });
  afterAll(() => stack?.stop());

  async function expectNothingLeft() {
    expect(await leftovers(stack.ctx, user.id)).toEqual({
      structures: 0,
      versions: 0,
      blobRows: baselineBlobRows,
      blobFiles: 0,
      tempFiles: 0,
      stagingEntries: 0,
    });
  }

  async function upload(name: string, content: Uint8Array | string, wait = true) {
    return api.upload(`/v1/projects/${projectId}/structures`, { name, content }, {}, wait ? { prefer: 'wait=30' } : {});
  }

  it('refuses an empty file with 422', async () => {
    const response = await upload('empty.pdb', '');
    expect(response.status).toBe(422);
    expect(response.body.error).toMatchObject({ code: 'empty_file', message: 'The file is empty.' });
    await expectNothingLeft();
  });

  it('refuses a PNG renamed .pdb with 415, at once', async () => {
    const response = await upload('picture.pdb', PNG, false);
    expect(response.status).toBe(415);
    expect(response.body.error.code).toBe('unsupported_format');
    expect(response.body.error.message).toContain('PNG image');
    await expectNothingLeft();
  });

  it('refuses text that is no structure format with 415', async () => {
    const response = await upload('notes.pdb', 'Dear colleague,\nplease find attached the structure.\n');
    expect(response.status).toBe(415);
    expect(response.body.error.message).toMatch(/does not look like PDB, mmCIF/);
    await expectNothingLeft();
  });

  it('refuses a gzipped PNG once unpacked, and keeps the rejection on the upload record', async () => {
    const response = await upload('picture.pdb.gz', gzipSync(PNG), false);
    expect(response.status).toBe(202);
    const final = await waitForUpload(api, response.body.upload.id);
    expect(final.state).toBe('rejected');
    expect(final.error).toMatchObject({ code: 'unsupported_format' });
    await expectNothingLeft();
  });

  it('refuses a truncated gzip with 422 and says so', async () => {
    const whole = gzipSync(await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb')));
    const response = await upload('1crn.pdb.gz', whole.subarray(0, Math.floor(whole.length / 2)));
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe('corrupt_compression');
    expect(response.body.error.message).toMatch(/gzip data is truncated or corrupt/);
    await expectNothingLeft();
  });

  it('refuses a PDB file without atoms with 422 and the problem listed', async () => {
    const header = 'HEADER    PLANT PROTEIN                           30-APR-81   1CRN              \nREMARK   1 NOTHING HERE\nEND\n';
    const response = await upload('header-only.pdb', header);
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe('invalid_structure');
    expect(response.body.error.message).toContain('no atoms');
    expect(response.body.error.details.problems).toEqual([expect.objectContaining({ code: 'no_atoms' })]);
    await expectNothingLeft();
  });

  it('refuses a broken mmCIF with the line of the problem', async () => {
    const broken = 'data_broken\nloop_\n_atom_site.id\n_atom_site.type_symbol\n_atom_site.Cartn_x\n1 C 1.0\n2 "N 2.0\n';
    const response = await upload('broken.cif', broken);
    expect(response.status).toBe(422);
    const problem = response.body.error.details.problems[0];
    expect(problem.message).toMatch(/line \d+/);
    await expectNothingLeft();
  });

  it('refuses an upload over the size limit with 413 while streaming', async () => {
    const big = Buffer.alloc(MAX + 50_000, 'A');
    const response = await upload('big.pdb', big, false);
    expect(response.status).toBe(413);
    expect(response.body.error).toMatchObject({ code: 'file_too_large' });
    expect(response.body.error.message).toContain('200.0 KB');
    await expectNothingLeft();
  });

  it('refuses a decompression bomb with 413', async () => {
    const bomb = await startStack({ env: { MAX_EXPANDED_BYTES: '1MB' } });
    try {
      const owner = await userFactory(bomb.ctx);
      const bombApi = client(bomb.url, owner.token);
      const project = (await bombApi.post('/v1/projects', { name: 'bombs' })).body.id;
      const zeros = gzipSync(
        Buffer.concat([Buffer.from('ATOM      1  N   ALA A   1       0.000   0.000   0.000  1.00  0.00           N\n'), Buffer.alloc(5_000_000, 0x20)]),
      );
      const response = await bombApi.upload(`/v1/projects/${project}/structures`, { name: 'bomb.pdb.gz', content: zeros }, {}, { prefer: 'wait=30' });
      expect(response.status).toBe(413);
      expect(response.body.error.code).toBe('decompressed_too_large');
      expect(await leftovers(bomb.ctx, owner.id)).toMatchObject({ structures: 0, blobFiles: 0, tempFiles: 0, stagingEntries: 0 });
    } finally {
      await bomb.stop();
    }
  });

  it('refuses a declared format that the content contradicts', async () => {
    const cif = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1CRN.cif'));
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'x.cif', content: cif }, { format: 'pdb' }, { prefer: 'wait=30' });
    expect(response.status).toBe(415);
    expect(response.body.error).toMatchObject({ code: 'format_mismatch', message: 'The upload says the file is PDB, but its content is mmCIF.' });
    await expectNothingLeft();
  });

  it('keeps bytes another structure still uses when a duplicate upload is rejected', async () => {
    // Rejections release only unreferenced blobs: a stored file's bytes survive a later failure of the same bytes.
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const stored = await upload('1crn.pdb', bytes);
    expect(stored.status).toBe(201);
    const mismatch = await api.upload(`/v1/projects/${projectId}/structures`, { name: '1crn.pdb', content: bytes }, { format: 'sdf' }, { prefer: 'wait=30' });
    expect(mismatch.status).toBe(415);
    const download = await api.raw(`/v1/structures/${stored.body.structure.id}/download`);
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes)).toBe(true);
    const rejected = await stack.ctx.orm.em.fork().find(Upload, { owner: user.id, state: 'rejected' });
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.every((u) => u.blob === null)).toBe(true);
  });
});
