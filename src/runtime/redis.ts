import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../lib/logger.js';
import { freePort } from './net.js';

export interface RedisHandle {
  url: string;
  stop(): Promise<void>;
}

/** Answers true when a Redis server replies PONG at host:port within the timeout. */
function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

async function findExecutable(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/local/bin', '/usr/sbin'])) {
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * Finds Redis the way molvault promises: REDIS_URL when given, else 127.0.0.1:6379 when it
 * answers, else a `redis-server` from the PATH with append-only persistence under `dataDir`.
 */
export async function findOrStartRedis(configuredUrl: string | undefined, dataDir: string, log: Logger): Promise<RedisHandle> {
  if (configuredUrl) return { url: configuredUrl, stop: async () => {} };
  if (await pingRedis('127.0.0.1', 6379)) {
    log.info('using the Redis server at 127.0.0.1:6379');
    return { url: 'redis://127.0.0.1:6379', stop: async () => {} };
  }
  const binary = await findExecutable('redis-server');
  if (!binary) {
    throw new Error(
      'molvault needs Redis and found none: REDIS_URL is not set, nothing answers at 127.0.0.1:6379, ' +
        'and there is no redis-server on the PATH. Install it (Debian/Ubuntu: apt-get install redis-server; ' +
        'macOS: brew install redis) or set REDIS_URL=redis://host:6379.',
    );
  }
  const dir = path.join(dataDir, 'redis');
  await fs.mkdir(dir, { recursive: true });
  // Another molvault process on this DATA_DIR may have started it already: share it (one queue store, one AOF).
  const marker = path.join(dir, 'molvault-redis.json');
  const running = JSON.parse(await fs.readFile(marker, 'utf8').catch(() => '{}')) as { port?: number };
  if (running.port && (await pingRedis('127.0.0.1', running.port))) {
    log.info({ port: running.port, dir }, 'using the redis-server another molvault process started');
    return { url: `redis://127.0.0.1:${running.port}`, stop: async () => {} };
  }
  const port = await freePort();
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'no'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await pingRedis('127.0.0.1', port)) break;
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} before answering`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info({ port, dir }, 'started redis-server with append-only persistence');
  await fs.writeFile(marker, JSON.stringify({ pid: child.pid, port }));
  const stop = async () => {
    await fs.rm(marker, { force: true });
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  process.once('exit', () => child.kill('SIGTERM'));
  return { url: `redis://127.0.0.1:${port}`, stop };
}
