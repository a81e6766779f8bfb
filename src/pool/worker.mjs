// Piscina thread entry. Registers the TypeScript loader in this thread, then serves tasks.ts.
import { existsSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';

// Mol*'s readers print what they skip (a stray CIF token, a bad MOL value) with console.log: a
// mutated file would put megabytes of its own text, raw, into the process's log. Each such line
// goes to stderr as one short JSON record instead, so logs stay JSON whatever a file holds.
const quoted = (args) =>
  args
    .map((a) => (typeof a === 'string' ? a : String(a)))
    .join(' ')
    .slice(0, 300);
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  console[level] = (...args) => {
    process.stderr.write(`${JSON.stringify({ level: level === 'error' ? 50 : 40, time: Date.now(), msg: 'parser message', text: quoted(args) })}\n`);
  };
}

// In a build (bin/build.mjs) the modules beside this file are JavaScript; in src/ tsx loads the TypeScript.
const ext = existsSync(new URL('./tasks.js', import.meta.url)) ? '.js' : '.ts';
if (ext === '.ts') (await import('tsx/esm/api')).register();
// Mol* reports what it meets in a file with console.warn ("Unknown spacegroup …"): into the JSON log with the rest.
const [{ createLogger }, { routeConsoleToLog }] = await Promise.all([import(`../lib/logger${ext}`), import(`../lib/consoleLog${ext}`)]);
routeConsoleToLog(createLogger(workerData?.logLevel ?? process.env.LOG_LEVEL ?? 'info').child({ thread: 'cpu-pool' }));
const tasks = await import(`./tasks${ext}`);
tasks.splitPdbFrom(workerData?.pdbSplitMinBytes ?? 0);
// A warm pool's threads after the first read a made-up structure a few times before serving (pool/warmUp.ts).
if (workerData?.warmUp && Atomics.add(workerData.started, 0, 1) > 0) await (await import(`./warmUp${ext}`)).warmUpReaders();

// Parsing is background work: at a lower priority than the thread serving the API, so reads stay
// quick while an import keeps these threads busy. Linux keeps a nice value per thread; elsewhere
// (or without /proc) the thread keeps the process's priority. At least this nice value: a worker
// process already lowered as a whole is not lowered twice. Lowered only now, once its code is
// loaded: a thread started with a worker process (which starts at normal priority) is ready to parse
// sooner under load, and one started later inherits the lowered priority anyway.
const nice = workerData?.nice ?? 0;
if (nice > 0) {
  try {
    const thread = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(thread, Math.max(getPriority(thread), nice));
  } catch {}
}

export const ingest = (task) => tasks.ingest(task);
// A warm pool's task that says a thread is up (cpuPool.ts).
export const ready = () => true;
export const parse = (task) => tasks.parse(task);
export const diff = (task) => tasks.diff(task);
// Loaded on first use, so threads that only ingest and parse start as fast as before.
export const inspect = async (task) => (await import(`../engines/inspect${ext}`)).inspect(task);
