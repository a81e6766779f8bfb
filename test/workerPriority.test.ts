import fs from 'node:fs/promises';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { workerAwaitingPostgres } from './helpers/processes.js';

/** The nice value and name of every thread of a process (Linux: field 19 of /proc/<pid>/task/<tid>/stat). */
async function threads(pid: number): Promise<{ tid: number; name: string; nice: number }[]> {
  const found: { tid: number; name: string; nice: number }[] = [];
  for (const tid of await fs.readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await fs.readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    found.push({ tid: Number(tid), name, nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) });
  }
  return found;
}

/**
 * A worker process starts at normal priority (a worker restarted after a crash is not starved by
 * the load it is to take on while it loads its code) and runs its jobs at BACKGROUND_NICE: the main
 * thread and libuv's pool once it has started, each parse thread once its code is loaded.
 */
describe('a worker process and its priority', () => {
  it.skipIf(process.platform !== 'linux' /* skipped when not on Linux: only Linux has per-thread nice values in /proc */)(
    'lowers its main thread, thread pool and parse thread to BACKGROUND_NICE once started (skipped off Linux, where /proc has no per-thread nice)',
    async () => {
      const base = os.getPriority();
      const lowered = Math.min(19, base + 7);
      // Its database is reached through a relay opened only later: the worker has loaded its code
      // and waits, still starting, for as long as the test needs.
      const { worker, openRelay, stop } = await workerAwaitingPostgres('nice', { BACKGROUND_NICE: '7' });
      try {
        const pid = worker.child.pid as number;
        // Code loaded, still starting (waiting for its database): not lowered.
        await worker.waitForLog(/Postgres does not answer yet/, 120_000);
        const early = await threads(pid);
        expect(early.find((t) => t.tid === pid)?.nice).toBe(base);
        await openRelay();
        await worker.waitForLog(/workers started/, 180_000);
        // The main thread, then the parse thread (a worker thread, named like the main one) once loaded.
        await expect.poll(async () => (await threads(pid)).find((t) => t.tid === pid)?.nice, { timeout: 30_000, interval: 50 }).toBe(lowered);
        await expect
          .poll(
            async () =>
              (await threads(pid)).filter((t) => t.tid !== pid && t.name === (early.find((e) => e.tid === pid)?.name ?? 'node') && t.nice === lowered).length,
            {
              timeout: 60_000,
              interval: 100,
            },
          )
          .toBeGreaterThan(0);
        for (const pool of (await threads(pid)).filter((t) => t.name === 'libuv-worker')) expect(pool.nice).toBe(lowered);
        expect(worker.notJson()).toEqual([]);
      } finally {
        await stop();
      }
    },
    300_000,
  );
});
