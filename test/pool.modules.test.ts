/**
 * A parse thread that reads only PDB and mmCIF files the byte-level readers take never loads Mol*'s
 * model/types.js (nor its model code at all): importing it costs a thread start time and a large
 * table every major GC marks again. Checked in a fresh process whose threads log each module
 * they load (test/support/moduleTrace.mjs); a file that needs Mol*'s model (an XYZ file) shows
 * the log sees types.js when it is loaded.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWithoutElementTable, MOLSTAR_TYPES, withoutElementTable } from '../src/pool/molstarTypes.mjs';
import { warmUpInputs } from '../src/pool/warmUp.js';
import { CORPUS, hasCorpus } from './helpers/corpus.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const TYPES = '/molstar/lib/mol-model/structure/model/types.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-modules-'));
  const [pdb, cif] = warmUpInputs();
  await fs.writeFile(path.join(dir, 'made-up.pdb'), pdb.bytes);
  await fs.writeFile(path.join(dir, 'made-up.cif'), cif.bytes);
  await fs.writeFile(path.join(dir, 'water.xyz'), '3\nwater\nO 0 0 0\nH 0 0 0.96\nH 0.93 0 -0.24\n');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/**
 * Parses `files` (path:format) in a fresh process's CpuPool (the sources', or a build's `pool`);
 * the modules each of its threads loaded, and the outcomes.
 */
async function parseInFreshPool(name: string, files: string[], warm = 0, pool?: string) {
  const traces = path.join(dir, name);
  await fs.mkdir(traces);
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './test/support/moduleTrace.mjs',
      'test/support/poolParse.ts',
      ...(warm ? ['--warm', String(warm)] : []),
      ...(pool ? ['--pool', pool] : []),
      ...files,
    ],
    { cwd: ROOT, env: { ...process.env, MODULE_TRACE_DIR: traces }, timeout: 120_000 },
  );
  const threads = new Map<string, string[]>();
  for (const file of await fs.readdir(traces)) threads.set(file, (await fs.readFile(path.join(traces, file), 'utf8')).split('\n').filter(Boolean));
  const outcomes = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { ok: boolean; parser: string; atoms?: number });
  return { threads, outcomes };
}

/** The threads that loaded the parse code (the pool's), by thread id. */
const parseThreads = (threads: Map<string, string[]>) => [...threads].filter(([, modules]) => modules.some((m) => m.endsWith('/src/formats/parse.ts')));

describe("parse threads and Mol*'s model/types.js", () => {
  it('a fresh pool thread reads a PDB and an mmCIF file without loading it', async () => {
    const { threads, outcomes } = await parseInFreshPool('plain', [`${path.join(dir, 'made-up.pdb')}:pdb`, `${path.join(dir, 'made-up.cif')}:cif`]);
    expect(outcomes.map((o) => [o.ok, o.parser, o.atoms])).toEqual([
      [true, 'molvault pdb reader (as molstar 5.11.0)', 3038],
      [true, 'molvault mmcif reader (as molstar 5.11.0)', 3038],
    ]);
    const pool = parseThreads(threads);
    expect(pool).toHaveLength(1);
    const [, modules] = pool[0];
    expect(modules.some((m) => m.endsWith('/src/formats/pdbFast.ts'))).toBe(true);
    expect(modules.filter((m) => m.includes(TYPES))).toEqual([]);
    // No Mol* model code either: what stays is its small element guesser and the generated name lists.
    expect(modules.filter((m) => m.includes('/molstar/lib/mol-model/structure/model/') && !m.includes('/model/types/'))).toEqual([]);
    for (const [, other] of threads) expect(other.filter((m) => m.includes(TYPES))).toEqual([]);
  });

  it('nor does a warm pool, whose second thread warms up on made-up PDB and mmCIF files', async () => {
    const { threads, outcomes } = await parseInFreshPool('warm', [`${path.join(dir, 'made-up.pdb')}:pdb`], 2);
    expect(outcomes.map((o) => o.ok)).toEqual([true]);
    expect(parseThreads(threads)).toHaveLength(2);
    for (const [thread, modules] of threads)
      expect(
        modules.filter((m) => m.includes(TYPES)),
        `thread ${thread}`,
      ).toEqual([]);
  });

  it.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent */)(
    'nor does a thread reading corpus PDB files, plain and gzipped (skipped without ../shared/corpus)',
    async () => {
      const names = (await fs.readdir(path.join(CORPUS, 'pdb'))).sort();
      const files = [...names.filter((n) => n.endsWith('.pdb')).slice(0, 8), ...names.filter((n) => n.endsWith('.gz'))].map(
        (n) => `${path.join(CORPUS, 'pdb', n)}:pdb`,
      );
      const { threads, outcomes } = await parseInFreshPool('corpus', files);
      expect(outcomes.filter((o) => o.parser === 'molvault pdb reader (as molstar 5.11.0)').length).toBeGreaterThan(8);
      for (const [thread, modules] of threads)
        expect(
          modules.filter((m) => m.includes(TYPES)),
          `thread ${thread}`,
        ).toEqual([]);
    },
  );

  it('a file read through Mol*’s model (XYZ) loads it, so the log would show it', async () => {
    const { threads, outcomes } = await parseInFreshPool('xyz', [`${path.join(dir, 'water.xyz')}:xyz`]);
    expect(outcomes.map((o) => [o.ok, o.atoms])).toEqual([[true, 3]]);
    const [[, modules]] = parseThreads(threads);
    expect(modules.filter((m) => m.includes(TYPES))).toHaveLength(1);
  });
});

describe("Mol*'s model/types.js without its element table (src/pool/molstarTypes.mjs)", () => {
  const typesFile = path.join(ROOT, 'node_modules', TYPES);
  it("takes out the table's construction and nothing else", async () => {
    const source = await fs.readFile(typesFile, 'utf8');
    const rewritten = withoutElementTable(source);
    expect(rewritten).not.toBe(source);
    expect(rewritten).not.toContain('const _esCache = (function');
    expect(rewritten).toContain('const _esCache = Object.create(null);');
    const table = source.slice(source.indexOf('const _esCache'), source.indexOf('export function ElementSymbol'));
    expect(source.replace(table, '')).toBe(rewritten.replace('const _esCache = Object.create(null);\n', ''));
  });

  it('ElementSymbol answers as with the table: every key the table holds maps to its own upper case', async () => {
    const { ElementSymbol } = await import('molstar/lib/mol-model/structure/model/types.js');
    const letters = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'];
    let keys = 0;
    for (const a of letters) {
      expect(ElementSymbol(a)).toBe(a.toUpperCase());
      for (const b of letters) {
        expect(ElementSymbol(a + b)).toBe((a + b).toUpperCase());
        for (const c of letters) if (ElementSymbol(a + b + c) === (a + b + c).toUpperCase()) keys++;
      }
    }
    expect(keys).toBe(letters.length ** 3);
  });

  it('the load hook rewrites types.js alone', () => {
    const next = (url: string) => ({ format: 'module', source: url.endsWith('types.js') ? 'const _esCache = (function () {\n  return 1;\n}());\nx;' : 'y' });
    expect(MOLSTAR_TYPES.test(`file://${typesFile}`)).toBe(true);
    expect(loadWithoutElementTable(`file://${typesFile}`, {}, next).source).toBe('const _esCache = Object.create(null);\nx;');
    expect(loadWithoutElementTable('file:///x/molstar/lib/mol-model/structure/model/other.js', {}, next).source).toBe('y');
  });
});

describe("parse threads of the build (bin/build.mjs) and Mol*'s model/types.js", () => {
  // A build of a copy of the code (its node_modules linked), as test/build.test.ts makes one.
  let root: string;
  let app: string;
  /** The build's chunks that hold types.js (from the build's metafile). */
  let typesChunks: string[];
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-modules-build-'));
    for (const part of ['bin', 'src', 'migrations', 'package.json']) await fs.cp(path.join(ROOT, part), path.join(root, part), { recursive: true });
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    await run(process.execPath, ['bin/build.mjs'], { cwd: root, timeout: 170_000 });
    const { id } = JSON.parse(await fs.readFile(path.join(root, 'dist/current.json'), 'utf8'));
    app = path.join(root, 'dist', id, 'app');
    const meta = JSON.parse(await fs.readFile(path.join(root, 'dist', id, 'meta.json'), 'utf8')) as {
      outputs: Record<string, { inputs: Record<string, unknown> }>;
    };
    typesChunks = Object.entries(meta.outputs)
      .filter(([, output]) => Object.keys(output.inputs).some((input) => input.endsWith(TYPES)))
      .map(([file]) => `/${path.basename(file)}`);
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const builtThreads = (threads: Map<string, string[]>) => [...threads].filter(([, modules]) => modules.some((m) => m.endsWith(`${app}/worker.mjs`)));
  const typesLoaded = (modules: string[]) => modules.filter((m) => typesChunks.some((chunk) => m.endsWith(chunk)));

  it('a warm pool of the build reads PDB and mmCIF files without loading the chunk that holds it', async () => {
    expect(typesChunks).toHaveLength(1);
    const { threads, outcomes } = await parseInFreshPool(
      'build',
      [`${path.join(dir, 'made-up.pdb')}:pdb`, `${path.join(dir, 'made-up.cif')}:cif`],
      2,
      path.join(app, 'cpuPool.mjs'),
    );
    expect(outcomes.map((o) => [o.ok, o.parser])).toEqual([
      [true, 'molvault pdb reader (as molstar 5.11.0)'],
      [true, 'molvault mmcif reader (as molstar 5.11.0)'],
    ]);
    expect(builtThreads(threads)).toHaveLength(2);
    for (const [thread, modules] of threads) expect(typesLoaded(modules), `thread ${thread}`).toEqual([]);
  });

  it('while an XYZ file, read through Mol*’s model, loads it', async () => {
    const { threads, outcomes } = await parseInFreshPool('build-xyz', [`${path.join(dir, 'water.xyz')}:xyz`], 0, path.join(app, 'cpuPool.mjs'));
    expect(outcomes.map((o) => o.ok)).toEqual([true]);
    const [[, modules]] = builtThreads(threads);
    expect(typesLoaded(modules)).toHaveLength(1);
    // Without the table it builds as it loads (src/pool/molstarTypes.mjs).
    const chunk = await fs.readFile(path.join(app, typesChunks[0]), 'utf8');
    expect(chunk).toContain('ElementSymbol');
    expect(chunk).not.toContain('_esCache = (function');
  });
});
