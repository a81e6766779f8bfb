import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS, feature, hasCorpus, readManifest } from './helpers/corpus.js';
import { type Client, client, storedStructure, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');
const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
const BROKEN = 'notes/broken.pdb';
const BROKEN_CONTENT = 'This is a lab notebook page, not a molecular structure.\n';

/** Runs the real `molvault import` as a user would: a child process talking HTTP to the stack. */
async function molvaultImport(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'import', ...args], {
      env: { ...process.env, MOLVAULT_URL: '', MOLVAULT_TOKEN: '', ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/**
 * Small real structures: corpus pdb/ and cif/ files under 100 KB when the corpus exists (a fresh
 * clone has none), else the test fixtures. Copied into `dir` under two subfolders.
 */
async function structureSet(dir: string, count: number): Promise<string[]> {
  const sources: string[] = [];
  if (hasCorpus) {
    // Files every careful reader takes (atoms present, gemmi reads them), so each one should be stored.
    for (const entry of await readManifest()) {
      const bytes = (await fs.stat(path.join(CORPUS, entry.file))).size;
      const readable = (feature(entry.features, 'atoms') ?? 0) > 0 && entry.features.includes('gemmi:OK');
      if (/^(pdb|cif)\//.test(entry.file) && !entry.file.endsWith('.gz') && bytes < 100_000 && readable) sources.push(path.join(CORPUS, entry.file));
    }
  } else {
    for (const name of ['ngl_1crn.pdb', 'ngl_1CRN.cif', 'chemfiles_insertion-code.pdb', 'ngl_multi-models-example.pdb']) {
      sources.push(path.join(FIXTURES, name));
    }
  }
  // Round-robin over the sources with a distinct first line, so every file is new content.
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const source = sources[i % sources.length];
    const folder = source.includes(`${path.sep}cif${path.sep}`) || source.endsWith('.cif') ? 'cif' : 'pdb';
    const name = `${folder}/${String(i).padStart(3, '0')}_${path.basename(source)}`;
    const content = await fs.readFile(source);
    const marker = folder === 'cif' ? `# molvault import test copy ${i}\n` : `REMARK 999 molvault import test copy ${i}\n`;
    await fs.mkdir(path.join(dir, folder), { recursive: true });
    await fs.writeFile(path.join(dir, name), Buffer.concat([Buffer.from(marker), content]));
    names.push(name);
  }
  return names;
}

async function summaryOf(result: { code: number; stdout: string; stderr: string }) {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`molvault import printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
}

describe('molvault import (the command)', () => {
  let stack: Stack;
  let token: string;
  let api: Client;
  let scratch: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    stack = await startStack();
    const user = await userFactory(stack.ctx);
    token = user.token;
    api = client(stack.url, token);
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-import-cli-'));
    env = { MOLVAULT_URL: stack.url, MOLVAULT_TOKEN: token };
  });
  afterAll(async () => {
    await stack?.stop();
    if (scratch) await fs.rm(scratch, { recursive: true, force: true });
  });

  it('refuses a project that does not exist, naming the projects there are, and creates it only when asked', async () => {
    await api.post('/v1/projects', { name: 'existing lab project' });
    const dir = path.join(scratch, 'missing-project');
    await structureSet(dir, 1);

    const missing = await molvaultImport([dir, '--project', 'no such project'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no project named "no such project"');
    expect(missing.stderr).toContain('"existing lab project"');
    expect(missing.stderr).toContain('--create-project');
    expect(missing.stdout).toBe('');
    const projects = (await api.get('/v1/projects')).body.items.map((p: { name: string }) => p.name);
    expect(projects).not.toContain('no such project');

    const noToken = await molvaultImport([dir, '--project', 'x'], { MOLVAULT_URL: stack.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('MOLVAULT_TOKEN');

    const badToken = await molvaultImport([dir, '--project', 'x'], { MOLVAULT_URL: stack.url, MOLVAULT_TOKEN: 'mv_not_a_real_token' });
    expect(badToken.code).toBe(3);
    expect(badToken.stderr).toContain('401');

    const nowhere = await molvaultImport([path.join(scratch, 'not-there'), '--project', 'existing lab project'], env);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain('does not exist');
  });

  it('skips files the project already stores (uploaded one by one, even gzipped) and sends nothing', async () => {
    const { body: project } = await api.post('/v1/projects', { name: `resume-${randomBytes(3).toString('hex')}` });
    const dir = path.join(scratch, 'resume-from-uploads');
    const names = await structureSet(dir, 3);
    // One of them as .gz: the project knows it by the sha256 of the bytes as sent, not only of the content.
    const gzName = `${names[0]}.gz`;
    await fs.writeFile(path.join(dir, gzName), gzipSync(await fs.readFile(path.join(dir, names[0]))));
    await fs.rm(path.join(dir, names[0]));
    await storedStructure(api, project.id, path.basename(gzName), await fs.readFile(path.join(dir, gzName)));
    for (const name of names.slice(1)) await storedStructure(api, project.id, path.basename(name), await fs.readFile(path.join(dir, name)));

    const result = await molvaultImport([dir, '--project', project.name, '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const summary = await summaryOf(result);
    expect(summary).toMatchObject({ mode: 'directory', files: 3, sent: 0, imports: [], alreadyStored: 3, skipped: 3, stored: 0, failed: 0, rejected: 0 });
    expect(result.stderr).toContain('3 already stored, skipped');
    expect((await api.get(`/v1/projects/${project.id}`)).body.structureCount).toBe(3);
  });

  it('remembers content the project refused: a re-run reports it as refused before, sends nothing and exits 0; --retry-refused sends it again', async () => {
    const { body: project } = await api.post('/v1/projects', { name: `refused-${randomBytes(3).toString('hex')}` });
    const dir = path.join(scratch, 'refused-before');
    await structureSet(dir, 2);
    await fs.mkdir(path.join(dir, path.dirname(BROKEN)), { recursive: true });
    await fs.writeFile(path.join(dir, BROKEN), BROKEN_CONTENT);

    const first = await molvaultImport([dir, '--project', project.name, '--json'], env);
    expect(first.code, first.stderr).toBe(1);
    expect(await summaryOf(first)).toMatchObject({ files: 3, stored: 2, rejected: 1, refusedBefore: [] });

    const again = await molvaultImport([dir, '--project', project.name, '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    const summary = await summaryOf(again);
    expect(summary).toMatchObject({ files: 3, sent: 0, stored: 0, rejected: 0, failed: 0, alreadyStored: 2, skipped: 3 });
    expect(summary.refusedBefore).toHaveLength(1);
    expect(summary.refusedBefore[0].name).toBe(BROKEN);
    expect(summary.refusedBefore[0].message.length).toBeGreaterThan(10);
    expect(again.stderr).toContain('1 refused before, not sent again');

    const retried = await molvaultImport([dir, '--project', project.name, '--json', '--retry-refused'], env);
    expect(retried.code).toBe(1);
    expect(await summaryOf(retried)).toMatchObject({ sent: 1, rejected: 1, refusedBefore: [] });
  });

  it('checks and sends a folder group by group: content stored already or seen in an earlier group is not sent', async () => {
    const { body: project } = await api.post('/v1/projects', { name: `groups-${randomBytes(3).toString('hex')}` });
    const dir = path.join(scratch, 'groups');
    const names = await structureSet(dir, 12);
    // Stored before: three files of the second group. A copy of the first file, walked last (a later group).
    for (const name of names.slice(5, 8)) await storedStructure(api, project.id, path.basename(name), await fs.readFile(path.join(dir, name)));
    await fs.copyFile(path.join(dir, names[0]), path.join(dir, 'zz-copy-of-the-first.pdb'));

    const result = await molvaultImport([dir, '--project', project.name, '--files-per-import', '4', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const summary = await summaryOf(result);
    // Groups of 4, 4, 4 and 1 files: the fourth holds only the copy, so three imports go out.
    expect(summary).toMatchObject({ files: 13, sent: 9, stored: 9, alreadyStored: 3, skipped: 4, failed: 0, rejected: 0 });
    expect(summary.imports).toHaveLength(3);
    expect(summary.skippedFiles).toEqual([{ name: 'zz-copy-of-the-first.pdb', reason: `same content as ${names[0]}` }]);
    expect((await api.get(`/v1/projects/${project.id}`)).body.structureCount).toBe(12);
  });

  describe('against the import API', () => {
    let projectName: string;
    let projectId: string;
    let dir: string;

    beforeAll(async () => {
      projectName = `cli-import-${randomBytes(3).toString('hex')}`;
      dir = path.join(scratch, 'lab-folder');
      await structureSet(dir, 24);
      await fs.mkdir(path.join(dir, 'notes'), { recursive: true });
      await fs.writeFile(path.join(dir, BROKEN), BROKEN_CONTENT);
      // Left out without a word: hidden files and folders.
      await fs.writeFile(path.join(dir, '.DS_Store'), 'finder junk');
      await fs.mkdir(path.join(dir, '.git'));
      await fs.writeFile(path.join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
      // Reported, not followed: a link to a structure outside the folder.
      await fs.symlink(path.join(FIXTURES, 'ngl_1crn.pdb'), path.join(dir, 'linked.pdb'));
    });

    it('imports a folder: stores the structures, lists the broken file with its reason and exits 1', async () => {
      // Three imports of at most 10 files: the split path is the one large folders take.
      const result = await molvaultImport([dir, '--project', projectName, '--create-project', '--files-per-import', '10', '--tags', 'cli,batch1'], env);
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(1);
      expect(result.stdout).toContain(`into project "${projectName}"`);
      expect(result.stdout).toMatch(/stored\s+24\b/);
      expect(result.stdout).toMatch(/Not stored:\n {2}notes\/broken\.pdb: (rejected: )?\S.+/);
      expect(result.stdout).toContain('linked.pdb: symbolic link, not followed');
      expect(result.stdout).not.toContain('.DS_Store');
      expect(result.stderr).toContain('created project');

      const projects = (await api.get('/v1/projects')).body.items as { id: string; name: string; structureCount: number }[];
      const project = projects.find((p) => p.name === projectName);
      expect(project?.structureCount).toBe(24);
      projectId = project?.id as string;
      const { body: listed } = await api.get(`/v1/structures?project=${projectId}&limit=100`);
      expect(listed.items).toHaveLength(24);
      for (const structure of listed.items) expect(structure.tags).toEqual(expect.arrayContaining(['cli', 'batch1']));
    });

    it('re-running the same folder uploads nothing and reports everything already stored', async () => {
      expect(projectId, 'the folder import above must have run').toBeDefined();
      // The scientist removes the broken file and runs the same command again.
      await fs.rm(path.join(dir, BROKEN));
      const result = await molvaultImport([dir, '--project', projectName, '--json'], env);
      expect(result.code, result.stderr).toBe(0);
      const summary = await summaryOf(result);
      expect(summary).toMatchObject({ files: 25, sent: 0, bytesSent: 0, imports: [], alreadyStored: 24, stored: 0, failed: 0, rejected: 0 });
      expect(summary.skippedFiles).toEqual([{ name: 'linked.pdb', reason: 'symbolic link, not followed' }]);
      expect(result.stderr).toContain('24 already stored, skipped');
      expect((await api.get(`/v1/projects/${projectId}`)).body.structureCount).toBe(24);
    });

    it('sends an archive as one archive and summarizes its entries', async () => {
      const archiveDir = path.join(scratch, 'archive-src');
      const entries = await structureSet(archiveDir, 4);
      const archive = path.join(scratch, 'from-a-collaborator.tar.gz');
      await run('tar', ['-czf', archive, '-C', archiveDir, '.']);
      const { body: project } = await api.post('/v1/projects', { name: `archive-${randomBytes(3).toString('hex')}` });

      const result = await molvaultImport([archive, '--project', project.name, '--json'], env);
      expect(result.code, result.stderr).toBe(0);
      const summary = await summaryOf(result);
      expect(summary).toMatchObject({ mode: 'archive', sent: 1, stored: 4, failed: 0, rejected: 0 });
      expect(summary.imports).toHaveLength(1);
      expect(summary.bytesSent).toBe((await fs.stat(archive)).size);
      const { body: listed } = await api.get(`/v1/structures?project=${project.id}&limit=100`);
      expect(listed.items).toHaveLength(entries.length);

      // The same archive again: the server skips every entry it stores already.
      const again = await molvaultImport([archive, '--project', project.name, '--json'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(await summaryOf(again)).toMatchObject({ mode: 'archive', stored: 0, alreadyStored: 4, skipped: 4 });
      expect((await api.get(`/v1/projects/${project.id}`)).body.structureCount).toBe(4);
    });
  });
});

describe('molvault import against a server with smaller limits', () => {
  let stack: Stack;
  let scratch: string;
  beforeAll(async () => {
    stack = await startStack({ env: { IMPORT_MAX_ITEMS: '4' } });
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-import-cli-limits-'));
  });
  afterAll(async () => {
    await stack?.stop();
    if (scratch) await fs.rm(scratch, { recursive: true, force: true });
  });

  it('splits an import the server finds too large into smaller ones and stores every file', async () => {
    const token = (await userFactory(stack.ctx)).token;
    const dir = path.join(scratch, 'ten');
    await structureSet(dir, 10);
    const result = await molvaultImport([dir, '--project', 'split', '--create-project', '--json'], { MOLVAULT_URL: stack.url, MOLVAULT_TOKEN: token });
    expect(result.code, result.stderr).toBe(0);
    const summary = await summaryOf(result);
    // 10 files → 5 + 5 (refused) → 3 + 2 + 3 + 2: four imports of at most 4 files.
    expect(summary).toMatchObject({ files: 10, sent: 10, stored: 10, failed: 0, rejected: 0 });
    expect(summary.imports).toHaveLength(4);
    expect(summary.bytesSent).toBe(
      (
        await Promise.all(
          (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => fs.stat(path.join(e.parentPath, e.name))),
        )
      ).reduce((sum, st) => sum + st.size, 0),
    );
  });
});

describe('POST /v1/projects/:id/imports/known', () => {
  let stack: Stack;
  let api: Client;
  beforeAll(async () => {
    stack = await startStack();
    api = client(stack.url, (await userFactory(stack.ctx)).token);
  });
  afterAll(() => stack?.stop());

  it('answers which checksums the project stores: raw bytes of uploads and content of current versions, not trash', async () => {
    const { body: project } = await api.post('/v1/projects', { name: 'known files' });
    const { body: other } = await api.post('/v1/projects', { name: 'another project' });
    const pdb = await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb'));
    const cifGz = await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif.gz'));
    const cif = await fs.readFile(path.join(FIXTURES, 'ngl_1CRN.cif'));
    const small = await fs.readFile(path.join(FIXTURES, 'chemfiles_insertion-code.pdb'));
    await storedStructure(api, project.id, 'crambin.pdb', pdb);
    await storedStructure(api, project.id, 'crambin.cif.gz', cifGz);
    const trashed = await storedStructure(api, project.id, 'insertion.pdb', small);
    expect((await api.delete(`/v1/structures/${trashed}`)).status).toBeLessThan(300);
    const elsewhere = await fs.readFile(path.join(FIXTURES, 'ngl_multi-models-example.pdb'));
    await storedStructure(api, other.id, 'multi.pdb', elsewhere);

    const asked = [sha256(pdb), sha256(cifGz).toUpperCase(), sha256(cif), sha256(small), sha256(elsewhere), sha256('never uploaded')];
    const { status, body } = await api.post(`/v1/projects/${project.id}/imports/known`, { sha256: asked });
    expect(status).toBe(200);
    // The .gz is known by its bytes as sent and by its unwrapped content; trash and the other project's file are not.
    expect([...body.known].sort()).toEqual([sha256(pdb), sha256(cifGz), sha256(cif)].sort());

    expect((await api.post(`/v1/projects/${project.id}/imports/known`, { sha256: [] })).body).toEqual({ known: [], refused: [] });
  });

  it('refuses what is not a list of checksums, too many at once, and another user’s project', async () => {
    const { body: project } = await api.post('/v1/projects', { name: 'known refusals' });
    const bad = await api.post(`/v1/projects/${project.id}/imports/known`, { sha256: ['abc'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('sha256');
    const tooMany = await api.post(`/v1/projects/${project.id}/imports/known`, { sha256: Array.from({ length: 5001 }, (_, i) => sha256(String(i))) });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toContain('5000');
    const stranger = client(stack.url, (await userFactory(stack.ctx)).token);
    const foreign = await stranger.post(`/v1/projects/${project.id}/imports/known`, { sha256: [sha256('x')] });
    expect(foreign.status).toBe(404);
  });
});
