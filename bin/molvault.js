#!/usr/bin/env node
// The molvault command. Runs the build in dist/ when it is current (bin/build.mjs), otherwise the
// TypeScript sources through tsx's loader.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 17)) {
  console.error(
    `molvault needs Node.js 22.17 or newer; this is ${process.versions.node}. ` +
      'Run it through npm (npm start, npx molvault …), which uses the Node pinned in package.json.',
  );
  process.exit(1);
}
// Started through npm (npm start, npm run, npx) molvault runs under npm and a shell: a SIGTERM sent
// to npm ends the shell but never reaches this process, which would keep running as an orphan. So
// when the launcher goes away, this process takes it as the SIGTERM it was meant to get.
if (process.env.npm_command) {
  const launcher = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === launcher) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  watch.unref();
}
const { currentBuild } = await import('./buildState.mjs');
// migration:create writes the new migration beside the others: into migrations/, never into a build.
const fromSource = process.env.MOLVAULT_FROM_SOURCE === '1' || process.argv[2] === 'migration:create';
const build = fromSource ? undefined : currentBuild();
const { pathToFileURL } = await import('node:url');
if (!build) {
  const { register } = await import('tsx/esm/api');
  register();
}
const entry = (name, sourcePath) => (build ? pathToFileURL(`${build}/app/${name}.mjs`).href : new URL(sourcePath, import.meta.url).href);
if (process.argv[2] === 'import') {
  // A client of some server: it loads none of the server's code, so it starts at once.
  const { importCommand } = await import(entry('import', '../src/cli/import.ts'));
  process.exitCode = await importCommand(process.argv.slice(3));
} else {
  const { main } = await import(entry('main', '../src/cli/main.ts'));
  await main(process.argv.slice(2));
}
