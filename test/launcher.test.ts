import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the molvault launcher', () => {
  it('passes a SIGTERM sent to npm on to the molvault worker it started (a real npm, shell and Node)', { timeout: 180_000 }, async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-launcher-'));
    const output: string[] = [];
    // `npm run molvault -- worker`: npm runs `sh -c "node bin/molvault.js worker"`, so the worker is npm's grandchild.
    const npm = spawn('npm', ['run', '-s', 'molvault', '--', 'worker', '--queues', 'cleanup'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATA_DIR: dataDir,
        DATABASE_URL: inject('databaseUrl'),
        REDIS_URL: inject('redisUrl'),
        QUEUE_PREFIX: `mvlauncher-${randomBytes(3).toString('hex')}`,
        LOG_LEVEL: 'info',
        PARSE_THREADS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    npm.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    npm.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    let workerPid: number | undefined;
    try {
      // The worker's own pid, from its JSON log once it is up.
      workerPid = await until(
        'the worker to start',
        () => {
          for (const line of output.join('').split('\n')) {
            if (!line.startsWith('{')) continue;
            const entry = JSON.parse(line) as { msg?: string; pid?: number };
            if (entry.msg === 'workers started') return entry.pid;
          }
          return undefined;
        },
        150_000,
      );
      expect(workerPid).not.toBe(npm.pid);
      npm.kill('SIGTERM');
      await until('the worker to stop', () => !alive(workerPid as number) || undefined, 25_000);
      expect(output.join('')).toContain('"signal":"SIGTERM"');
    } finally {
      if (workerPid && alive(workerPid)) process.kill(workerPid, 'SIGKILL');
      if (npm.exitCode === null) npm.kill('SIGKILL');
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
