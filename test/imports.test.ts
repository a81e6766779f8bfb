import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { buildTar, importArchive, importFiles, waitForImport } from './helpers/imports.js';
import { type Stack, startStack } from './helpers/stack.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const fixture = (name: string) => fs.readFile(path.join(FIXTURES, name));

describe('bulk import', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;

  beforeAll(async () => {
    stack = await startStack();
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
  });
  afterAll(() => stack?.stop());

  it('imports many files sent as multipart, names kept as relative paths', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'smoke' })).body.id;
    const files = [
      { name: 'sub/dir/ngl_1crn.pdb', content: await fixture('ngl_1crn.pdb') },
      { name: 'chemfiles_aspirin.sdf', content: await fixture('chemfiles_aspirin.sdf') },
      { name: 'notes.txt', content: new TextEncoder().encode('not a structure\n') },
      { name: '.DS_Store', content: new Uint8Array([0, 1, 2]) },
    ];
    const accepted = await importFiles(api, projectId, files, { tags: 'bulk,smoke' });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(accepted.headers.get('location')).toBe(`/v1/imports/${accepted.body.import.id}`);
    expect(accepted.body.import.jobId).toBe(`batch-${accepted.body.import.id}`);
    const done = await waitForImport(api, accepted.body.import.id);
    expect(done).toMatchObject({ state: 'completed', total: 4, succeeded: 2, failed: 1, skipped: 1 });
    const byName = Object.fromEntries(done.items.map((i: any) => [i.name, i]));
    expect(byName['sub/dir/ngl_1crn.pdb'].state).toBe('stored');
    expect(byName['notes.txt']).toMatchObject({ state: 'rejected', error: { code: 'unsupported_format' } });
    expect(byName['.DS_Store']).toMatchObject({ state: 'skipped', error: { code: 'hidden_file' } });
    const structure = (await api.get(`/v1/structures/${byName['sub/dir/ngl_1crn.pdb'].structureId}`)).body;
    expect(structure).toMatchObject({ name: 'ngl_1crn', tags: ['bulk', 'smoke'], currentVersion: { filename: 'ngl_1crn.pdb' } });
  });

  it('imports a tar.gz sent as the body', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'smoke-tar' })).body.id;
    const archive = await buildTar([
      { name: 'a/', type: 'directory' },
      { name: 'a/ngl_1CRN.cif', content: await fixture('ngl_1CRN.cif') },
      { name: 'a/chemfiles_imatinib.mol2', content: await fixture('chemfiles_imatinib.mol2') },
      { name: '../evil.pdb', content: await fixture('ngl_1crn.pdb') },
      { name: 'link.pdb', type: 'symlink', linkname: '/etc/passwd' },
    ]);
    const accepted = await importArchive(api, projectId, archive);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const done = await waitForImport(api, accepted.body.import.id);
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'completed', source: 'archive', total: 4, succeeded: 2, skipped: 2 });
  });
});
