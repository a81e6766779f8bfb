import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectOrm } from '../src/db/orm.js';
import { dropDatabase, ensureDatabase, withDatabase } from '../src/runtime/postgres.js';

const REPO = path.resolve(import.meta.dirname, '..');
const PDB = path.resolve(REPO, '../shared/corpus/pdb/biopython_1A8O.pdb');

// A copy of the repository's code (its node_modules linked), so the test builds, edits and rebuilds
// without touching the checkout's own dist/ or sources.
let root: string;
const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const version = () => JSON.parse(node(['bin/molvault.js', 'version']));
const current = () => JSON.parse(readFileSync(path.join(root, 'dist/current.json'), 'utf8'));

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'molvault-build-'));
  for (const part of ['bin', 'src', 'migrations', 'package.json']) cpSync(path.join(REPO, part), path.join(root, part), { recursive: true });
  symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the build (bin/build.mjs)', () => {
  it('runs the sources through tsx until there is a build, then the build', () => {
    expect(version()).toEqual({ node: process.versions.node, from: 'sources' });
    node(['bin/build.mjs']);
    expect(version()).toEqual({ node: process.versions.node, from: 'build', build: current().id });
    // --if-stale leaves a current build alone.
    const id = current().id;
    node(['bin/build.mjs', '--if-stale']);
    expect(current().id).toBe(id);
  });

  it('goes back to the sources when one is edited, added or removed, and --if-stale builds again', () => {
    node(['bin/build.mjs', '--if-stale']);
    expect(version().from).toBe('build');
    const edited = path.join(root, 'src/lib/codeSource.ts');
    const later = new Date(Date.now() + 5_000);
    utimesSync(edited, later, later);
    expect(version().from).toBe('sources');

    node(['bin/build.mjs', '--if-stale']);
    expect(version().from).toBe('build');
    const added = path.join(root, 'src/lib/zzAdded.ts');
    writeFileSync(added, 'export const added = 1;\n');
    expect(version().from).toBe('sources');
    node(['bin/build.mjs', '--if-stale']);
    expect(version().from).toBe('build');
    rmSync(added);
    expect(version().from).toBe('sources');
    // MOLVAULT_FROM_SOURCE=1 runs the sources even beside a current build.
    node(['bin/build.mjs', '--if-stale']);
    expect(JSON.parse(node(['bin/molvault.js', 'version'], { MOLVAULT_FROM_SOURCE: '1' })).from).toBe('sources');
  });

  it('migrates a new database with the migrations compiled into it, under the names the sources record', async () => {
    node(['bin/build.mjs', '--if-stale']);
    const url = withDatabase(inject('databaseUrl'), `molvault_test_${inject('runId')}_build_${randomBytes(2).toString('hex')}`);
    await ensureDatabase(url);
    try {
      const env = { DATABASE_URL: url, REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'warn' };
      const report = JSON.parse(node(['bin/molvault.js', 'migrate'], env));
      const files = readdirSync(path.join(root, 'migrations')).filter((f) => f.endsWith('.ts'));
      // (The command migrates as it starts; its report counts what is applied in all.)
      expect(report.appliedInAll).toBe(files.length);
      // The sources find nothing pending in what the build migrated, and vice versa.
      const orm = await connectOrm(url);
      try {
        expect(await orm.migrator.getPending()).toEqual([]);
      } finally {
        await orm.close();
      }
      expect(JSON.parse(node(['bin/molvault.js', 'migrate'], env)).applied).toEqual([]);
    } finally {
      await dropDatabase(url);
    }
  });

  it('keeps the newest three builds, so a process running an older one still finds its modules', () => {
    for (let i = 0; i < 4; i++) node(['bin/build.mjs']);
    const builds = readdirSync(path.join(root, 'dist')).filter((name) => name.startsWith('build-'));
    expect(builds).toHaveLength(3);
    expect(builds).toContain(current().id);
  });

  it('parses in its own pool threads and scan helpers without tsx, which its copy cannot even find', () => {
    node(['bin/build.mjs', '--if-stale']);
    // The build alone, beside every package but tsx: a built module or thread entry that still
    // needed the TypeScript loader would fail to load.
    const bare = mkdtempSync(path.join(os.tmpdir(), 'molvault-build-bare-'));
    try {
      cpSync(path.join(root, 'dist', current().id), bare, { recursive: true });
      cpSync(path.join(root, 'package.json'), path.join(bare, 'package.json'));
      mkdirSync(path.join(bare, 'node_modules'));
      for (const name of readdirSync(path.join(REPO, 'node_modules')))
        if (name !== 'tsx' && name !== '.bin') symlinkSync(path.join(REPO, 'node_modules', name), path.join(bare, 'node_modules', name));
      const script = `
        const { CpuPool } = await import(${JSON.stringify(path.join(bare, 'app/cpuPool.mjs'))});
        const pool = new CpuPool(2, 60000, 512, 0, 1, true);
        await pool.warmed;
        const outcome = await pool.parse({ path: ${JSON.stringify(PDB)}, format: 'pdb' });
        await pool.close();
        let tsx = 'found';
        try { await import('tsx/esm/api'); } catch { tsx = 'missing'; }
        console.log(JSON.stringify({ ok: outcome.ok, atoms: outcome.ok ? outcome.summary.atoms : null, tsx }));`;
      const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: bare, encoding: 'utf8' }).trim().split('\n').pop()!);
      expect(out).toEqual({ ok: true, atoms: expect.any(Number), tsx: 'missing' });
      expect(out.atoms).toBeGreaterThan(0);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
