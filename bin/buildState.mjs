// What the build in dist/ was made from, and whether the sources have changed since. molvault runs
// its build only while it is current: an edited, added or removed source (a newer mtime or another
// file count) sends it back to running the TypeScript through tsx, so a stale build never runs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(ROOT, 'dist');
/** Which build is current: { id, files, newestMs, node }; the build itself is in dist/<id>/. */
export const STAMP = path.join(DIST, 'current.json');
export const SOURCE_DIRS = ['src', 'migrations'];

/** The source files a build is made from (the .mjs thread entries only for the sources' own runs), relative to the repository. */
export function sourceFiles() {
  const files = [];
  for (const dir of SOURCE_DIRS) {
    for (const entry of readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const name = entry.name;
      if (name.endsWith('.d.ts') || !/\.(ts|mjs)$/.test(name)) continue;
      files.push(path.relative(ROOT, path.join(entry.parentPath, name)));
    }
  }
  return files.sort();
}

/** The sources' fingerprint: how many there are and the newest modification. */
export function sourceFingerprint(files = sourceFiles()) {
  let newestMs = 0;
  for (const file of files) newestMs = Math.max(newestMs, statSync(path.join(ROOT, file)).mtimeMs);
  return { files: files.length, newestMs };
}

/** The directory of the build of the sources as they are now, or undefined when there is none. */
export function currentBuild() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return undefined;
  }
  const now = sourceFingerprint();
  if (stamp.files !== now.files || stamp.newestMs !== now.newestMs || stamp.node !== process.versions.node) return undefined;
  return path.join(DIST, stamp.id);
}
