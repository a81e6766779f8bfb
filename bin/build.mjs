#!/usr/bin/env node
// Compiles src/ and migrations/ to JavaScript, file for file (no bundling: the module graph, the
// lazy imports and every import.meta.url-relative path stay as they are), into dist/<id>/. A
// process started from the build loads its modules through Node's own loader instead of tsx's
// hooks, which is most of a worker process's start-up CPU. `npm start` and `npm test` build first
// (--if-stale); bin/molvault.js runs the build only while it is current (bin/buildState.mjs).
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { currentBuild, DIST, ROOT, STAMP, sourceFiles, sourceFingerprint } from './buildState.mjs';

// Builds are kept side by side: a process still running an older one loads its lazy modules and
// its parse threads from it. The newest few are kept.
const KEEP_BUILDS = 3;

if (process.argv.includes('--if-stale') && currentBuild()) process.exit(0);

const files = sourceFiles();
const fingerprint = sourceFingerprint(files);
const id = `build-${Date.now()}-${process.pid}`;
const outdir = path.join(DIST, id);
mkdirSync(outdir, { recursive: true });
const typescript = files.filter((f) => f.endsWith('.ts'));
await build({
  entryPoints: typescript.map((f) => path.join(ROOT, f)),
  outdir,
  outbase: ROOT,
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: `node${process.versions.node.split('.')[0]}`,
  sourcemap: 'linked',
  logLevel: 'warning',
});
for (const file of files.filter((f) => !f.endsWith('.ts'))) {
  mkdirSync(path.dirname(path.join(outdir, file)), { recursive: true });
  copyFileSync(path.join(ROOT, file), path.join(outdir, file));
}
// The pointer is replaced in one rename, so a starting process reads the old build or the new one.
const pointer = `${STAMP}.${process.pid}.tmp`;
writeFileSync(pointer, `${JSON.stringify({ id, ...fingerprint, node: process.versions.node, builtAt: new Date().toISOString() })}\n`);
renameSync(pointer, STAMP);
const builds = readdirSync(DIST)
  .filter((name) => name.startsWith('build-'))
  .sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]));
for (const old of builds.slice(KEEP_BUILDS)) rmSync(path.join(DIST, old), { recursive: true, force: true });
console.error(`molvault: built ${typescript.length} modules into dist/${id}`);
