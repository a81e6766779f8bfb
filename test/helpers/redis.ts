import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from '../../src/runtime/net.js';

/**
 * A `redis-server` of a test's own on a free port of 127.0.0.1, without persistence, so an outage
 * test can flush, stop and restart it without touching the Redis the rest of the run shares.
 * `stop()` kills it (SIGKILL: the outage an operator's bad day brings); `start()` brings up a new,
 * empty one on the same port, as a Redis restarted without its data.
 */
export interface TestRedis {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A connection of the test's own (for FLUSHALL and looking), made on first use. */
  admin(): Redis;
  /** Stops the server and the test's connection, for afterAll. */
  close(): Promise<void>;
}

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function startTestRedis(): Promise<TestRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  let admin: Redis | undefined;
  const handle: TestRedis = {
    url,
    port,
    async start() {
      server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      for (let tries = 0; !(await answers(url)); tries++) {
        if (tries > 300 || server.exitCode !== null) throw new Error(`redis-server did not answer on ${url} (exit code ${server.exitCode})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      const running = server;
      server = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
    admin() {
      if (!admin) {
        admin = new Redis(url, { maxRetriesPerRequest: null });
        admin.on('error', () => {});
      }
      return admin;
    },
    async close() {
      admin?.disconnect();
      await handle.stop();
    },
  };
  await handle.start();
  return handle;
}
