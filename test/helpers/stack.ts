import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { startApiServer } from '../../src/api/server.js';
import { type Config, loadConfig, QUEUE_NAMES } from '../../src/config/index.js';
import { createLogger } from '../../src/lib/logger.js';
import { type AppContext, closeAppContext, createAppContext } from '../../src/runtime/context.js';
import { startWorkers, type WorkerSet } from '../../src/workers/main.js';

export interface Stack {
  url: string;
  ctx: AppContext;
  workers?: WorkerSet;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * A real molvault for one test file: the run's migrated database, Redis with a queue prefix of
 * its own, a scratch DATA_DIR, the API on a free port, and (unless told otherwise) workers.
 */
export async function startStack(options: { workers?: boolean; config?: Partial<Config>; env?: Record<string, string> } = {}): Promise<Stack> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-test-data-'));
  const prefix = `mvtest-${inject('runId')}-${randomBytes(3).toString('hex')}`;
  // No rate limit unless a test sets one: tests poll far faster than a person.
  const base = loadConfig({
    DATA_DIR: dataDir,
    QUEUE_PREFIX: prefix,
    PARSE_THREADS: '2',
    PARSE_TIMEOUT_MS: '60000',
    RATE_LIMIT_PER_MINUTE: '0',
    ...options.env,
  });
  const config = {
    ...base,
    ...options.config,
    databaseUrl: options.config?.databaseUrl ?? inject('databaseUrl'),
    redisUrl: options.config?.redisUrl ?? inject('redisUrl'),
  };
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const ctx = await createAppContext(config, log);
  const api = await startApiServer(ctx, 0, '127.0.0.1');
  const workers = options.workers === false ? undefined : await startWorkers(ctx, QUEUE_NAMES);
  return {
    url: `http://127.0.0.1:${api.port}`,
    ctx,
    workers,
    dataDir,
    async stop() {
      await api.close();
      await workers?.close();
      await Promise.all(Object.values(ctx.queues).map((q) => q.obliterate({ force: true }).catch(() => {})));
      await closeAppContext(ctx);
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
