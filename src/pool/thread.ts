// What a piscina thread of the CPU pool serves (tasks.ts). Its entry is worker.mjs when molvault runs
// from the sources (it loads tsx first), and the build's own worker.mjs, made from this module, when
// it runs from the build (bin/build.mjs).
import './threadConsole.js';
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import type { InspectTask } from '../engines/inspect.js';
import { routeConsoleToLog } from '../lib/consoleLog.js';
import { createLogger } from '../lib/logger.js';
import * as tasks from './tasks.js';

// Mol* reports what it meets in a file with console.warn ("Unknown spacegroup …"): into the JSON log with the rest.
routeConsoleToLog(createLogger(workerData?.logLevel ?? process.env.LOG_LEVEL ?? 'info').child({ thread: 'cpu-pool' }));
tasks.splitPdbFrom(workerData?.pdbSplitMinBytes ?? 0);
// A warm pool's threads after the first read a made-up structure a few times before serving (pool/warmUp.ts).
if (workerData?.warmUp && Atomics.add(workerData.started, 0, 1) > 0) await (await import('./warmUp.js')).warmUpReaders();

// Parsing is background work: at a lower priority than the thread serving the API, so reads stay
// quick while an import keeps these threads busy. Linux keeps a nice value per thread; elsewhere
// (or without /proc) the thread keeps the process's priority. At least this nice value: a worker
// process already lowered as a whole is not lowered twice. Lowered only now, once its code is
// loaded: a thread started with a worker process (which starts at normal priority) is ready to parse
// sooner under load, and one started later inherits the lowered priority anyway.
const nice: number = workerData?.nice ?? 0;
if (nice > 0) {
  try {
    const thread = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(thread, Math.max(getPriority(thread), nice));
  } catch {}
}

export const ingest = (task: tasks.IngestTask) => tasks.ingest(task);
// A warm pool's task that says a thread is up (cpuPool.ts).
export const ready = () => true;
export const parse = (task: tasks.ParseTask) => tasks.parse(task);
export const receive = (task: tasks.ReceiveTask) => tasks.receive(task);
export const receiveFile = (task: tasks.ReceiveFileTask) => tasks.receiveFile(task);
export const diff = (task: tasks.DiffTask) => tasks.diff(task);
// Loaded on first use, so threads that only ingest and parse start as fast as before.
export const inspect = async (task: InspectTask) => (await import('../engines/inspect.js')).inspect(task);
