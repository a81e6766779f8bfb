/**
 * What this process runs: the build in dist/ (bin/build.mjs, which `npm start` and `npm test` make)
 * or the TypeScript sources through tsx (when there is no build of the sources as they are).
 */
export function codeSource(): { from: 'build'; build: string } | { from: 'sources' } {
  const match = /\/dist\/(build-[^/]+)\//.exec(import.meta.url);
  return match ? { from: 'build', build: match[1] } : { from: 'sources' };
}
