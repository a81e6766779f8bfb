import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../src/runtime/net.js';
import { startMolvault } from './helpers/processes.js';

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
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-nice-'));
      const prefix = `mvtest-nice-${randomBytes(3).toString('hex')}`;
      // Its database is reached through a port nothing listens on until the test opens a relay: the
      // worker has loaded its code and waits, still starting, for as long as the test needs.
      const port = await freePort();
      const target = new URL(inject('databaseUrl'));
      const through = new URL(inject('databaseUrl'));
      through.hostname = '127.0.0.1';
      through.port = String(port);
      const relay = net.createServer((socket) => {
        const upstream = net.connect(Number(target.port || 5432), target.hostname);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      const worker = startMolvault(['worker', '--queues', 'diff'], {
        DATABASE_URL: through.toString(),
        REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: prefix,
        DATA_DIR: dataDir,
        PARSE_THREADS: '1',
        BACKGROUND_NICE: '7',
        LOG_LEVEL: 'info',
      });
      try {
        const pid = worker.child.pid as number;
        // Code loaded, still starting (waiting for its database): not lowered.
        await worker.waitForLog(/Postgres does not answer yet/, 120_000);
        const early = await threads(pid);
        expect(early.find((t) => t.tid === pid)?.nice).toBe(base);
        await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
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
        await worker.stop();
        relay.close();
        await fs.rm(dataDir, { recursive: true, force: true });
        const redis = new Redis(inject('redisUrl'));
        await redis.del(`${prefix}:molvault:generation`).finally(() => redis.disconnect());
      }
    },
    300_000,
  );
});
