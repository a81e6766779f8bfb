import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createApp } from '../src/api/app.js';
import { loadConfig } from '../src/config/index.js';
import { routeConsoleToLog } from '../src/lib/consoleLog.js';
import { type AppContext, closeAppContext, createAppContext } from '../src/runtime/context.js';
import { startTestRedis } from './helpers/redis.js';

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const flush = () => new Promise((r) => setTimeout(r, 20));

describe('logs stay JSON', () => {
  const saved = { ...console };
  afterEach(() => {
    Object.assign(console, saved);
    vi.restoreAllMocks();
  });

  it("routes what libraries print with console.* (Mol*'s spacegroup warning) into the JSON log", async () => {
    const { log, lines } = capturingLogger();
    routeConsoleToLog(log);
    console.warn("Unknown spacegroup '%s', returning a 'P 1' with cellsize [1, 1, 1]", 'Q 9 9 9');
    console.error('[ioredis] Unhandled error event:', 'Error: connect ECONNREFUSED 127.0.0.1:6390');
    console.log('plain');
    await flush();
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, source: 'console', msg: "Unknown spacegroup 'Q 9 9 9', returning a 'P 1' with cellsize [1, 1, 1]" }),
      expect.objectContaining({ level: 50, source: 'console', msg: expect.stringContaining('ECONNREFUSED') }),
      expect.objectContaining({ level: 30, source: 'console', msg: 'plain' }),
    ]);
  });

  it('logs a client that went away mid-download as a debug line, not a raw stack trace; other stream failures as JSON errors', async () => {
    const { log, lines } = capturingLogger();
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-logs-'));
    const config = { ...loadConfig({ DATA_DIR: dataDir }), databaseUrl: 'postgres://unused', redisUrl: 'redis://unused' };
    const koa = createApp({ config, log, queues: {} } as unknown as AppContext);
    const raw = vi.spyOn(console, 'error').mockImplementation(() => {});
    // Koa installs its own printer only when nobody listens; the app listens, so callback() keeps ours.
    http.createServer(koa.callback());
    const premature = Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    const ctx = { method: 'GET', path: '/v1/structures/x/download', req: { destroyed: true } };
    koa.emit('error', premature, ctx);
    koa.emit('error', Object.assign(new Error('disk read failed'), { code: 'EIO' }), { ...ctx, req: { destroyed: false } });
    await flush();
    expect(raw).not.toHaveBeenCalled();
    expect(lines).toEqual([
      expect.objectContaining({ level: 20, code: 'ERR_STREAM_PREMATURE_CLOSE', msg: 'client went away before the answer was sent' }),
      expect.objectContaining({ level: 50, msg: 'answer failed after it started', err: expect.objectContaining({ message: 'disk read failed' }) }),
    ]);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('logs a Redis outage as JSON lines: the connection says it once, no queue prints a raw stack trace', async () => {
    const { log, lines } = capturingLogger();
    const raw = vi.spyOn(console, 'error').mockImplementation(() => {});
    const redis = await startTestRedis();
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-logs-'));
    const config = { ...loadConfig({ DATA_DIR: dataDir, QUEUE_PREFIX: 'mvtest-logs' }), databaseUrl: inject('databaseUrl'), redisUrl: redis.url };
    const app = await createAppContext(config, log);
    try {
      await redis.stop();
      await expect.poll(() => lines.filter((line) => line.msg === 'redis connection error').length, { timeout: 30_000 }).toBeGreaterThan(0);
      // A queue touched while Redis is away fails at once, as an error the API turns into a 503.
      await expect(app.queues.ingest.getJob('ingest-00000000-0000-0000-0000-000000000000')).rejects.toThrow();
      await flush();
      expect(raw).not.toHaveBeenCalled();
      expect(lines.find((line) => line.msg === 'redis connection error')).toMatchObject({ level: 40, err: expect.objectContaining({ code: 'ECONNREFUSED' }) });
      expect(lines.filter((line) => line.msg === 'queue error').every((line) => line.level === 20)).toBe(true);
    } finally {
      await closeAppContext(app);
      await redis.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
