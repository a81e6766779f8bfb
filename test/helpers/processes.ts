import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { freePort } from '../../src/runtime/net.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/molvault.js');

/** A `molvault <role>` child process whose output is kept, line by line, to be read by the test. */
export interface MolvaultProcess {
  child: ChildProcess;
  /** Every line it wrote, stdout and stderr alike, in order. */
  lines: string[];
  /** The lines that are not a JSON object (a log must have none). */
  notJson(): string[];
  /** The parsed log lines whose `msg` matches. */
  logged(msg: RegExp): Record<string, unknown>[];
  /** Waits until a log line's `msg` matches (or the process exits, or the timeout passes). */
  waitForLog(msg: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts `bin/molvault.js <args>` with `env` over this process's environment (DATABASE_URL,
 * REDIS_URL, QUEUE_PREFIX, DATA_DIR are the caller's to give), as production runs it.
 */
export function startMolvault(args: string[], env: Record<string, string>): MolvaultProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const partial = { stdout: '', stderr: '' };
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.on('data', (chunk: Buffer) => {
      const text = partial[stream] + chunk.toString();
      const parts = text.split('\n');
      partial[stream] = parts.pop() ?? '';
      lines.push(...parts.filter((line) => line.trim() !== ''));
    });
  }
  const logged = (msg: RegExp) =>
    lines.map(parse).filter((entry): entry is Record<string, unknown> => !!entry && typeof entry.msg === 'string' && msg.test(entry.msg));
  return {
    child,
    lines,
    notJson: () => [...lines, partial.stdout, partial.stderr].filter((line) => line.trim() !== '' && !parse(line)),
    logged,
    async waitForLog(msg, timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [found] = logged(msg);
        if (found) return found;
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`molvault ${args.join(' ')} never logged ${msg} (exit code ${child.exitCode}):\n${lines.slice(-40).join('\n')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A `molvault worker` (the diff queue, one parse thread) of its own Redis prefix and DATA_DIR whose
 * database is reached through a relay that nothing listens on until `openRelay()`: it loads its code
 * and waits, still starting, for as long as the test needs. `stop()` ends it and removes what it had.
 */
export async function workerAwaitingPostgres(name: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const target = new URL(inject('databaseUrl'));
  const through = new URL(inject('databaseUrl'));
  through.hostname = '127.0.0.1';
  through.port = String(port);
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `molvault-${name}-`));
  const prefix = `mvtest-${name}-${randomBytes(3).toString('hex')}`;
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
    LOG_LEVEL: 'info',
    ...env,
  });
  return {
    worker,
    openRelay: () => new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve)),
    async stop() {
      await worker.stop();
      relay.close();
      await fs.rm(dataDir, { recursive: true, force: true });
      const redis = new Redis(inject('redisUrl'));
      await redis.del(`${prefix}:molvault:generation`).finally(() => redis.disconnect());
    },
  };
}
