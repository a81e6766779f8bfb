import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startApiServer } from '../../src/api/server.js';
import { loadConfig, type QueueName } from '../../src/config/index.js';
import { createLogger, type Logger } from '../../src/lib/logger.js';
import { bootstrapServices, type Services } from '../../src/runtime/bootstrap.js';
import { type AppContext, closeAppContext, createAppContext } from '../../src/runtime/context.js';
import { freePort } from '../../src/runtime/net.js';
import { dropDatabase } from '../../src/runtime/postgres.js';
import { createToken, createUser } from '../../src/services/auth/auth.js';
import { startWorkers, type WorkerSet } from '../../src/workers/main.js';

/** A complete molvault running inside the benchmark process, with everything it made listed for cleanup. */
export interface BenchStack {
  url: string;
  ctx: AppContext;
  log: Logger;
  dataDir: string;
  queuePrefix: string;
  databaseUrl: string;
  /** Where Postgres came from, for the report. */
  postgresSource: 'DATABASE_URL' | 'embedded';
  /** Removes everything the stack made; safe to call more than once. */
  stop(): Promise<void>;
}

export interface BenchStackOptions {
  /** Queues to run workers for; empty (the default) means API only. */
  workerQueues?: readonly QueueName[];
  /** Extra environment for loadConfig (e.g. MAX_UPLOAD_BYTES). */
  env?: Record<string, string>;
  /**
   * A database of the caller's choosing, created if missing and kept afterwards (for benchmarks
   * that seed once and measure many times); by default each run gets a scratch database, dropped at the end.
   */
  keepDatabase?: string;
}

/**
 * Starts molvault in-process on scratch state only: a fresh DATA_DIR, a queue prefix and a
 * database of its own. Postgres is DATABASE_URL's server when set, else an embedded one under
 * the scratch DATA_DIR; Redis is whatever bootstrapServices finds or starts. Nothing here
 * touches another molvault's data, so the benchmark can run next to a dev server or tests.
 */
export async function startBenchStack(options: BenchStackOptions = {}): Promise<BenchStack> {
  const suffix = randomBytes(4).toString('hex');
  const queuePrefix = `mvbench-${suffix}`;
  const databaseName = options.keepDatabase ?? `molvault_bench_${suffix}`;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-'));
  // mkdtemp makes the dir 0700; as root the embedded Postgres runs as the `postgres` user,
  // which must be able to traverse DATA_DIR to reach DATA_DIR/postgres.
  await fs.chmod(dataDir, 0o755);
  // Logs go to stderr so the report on stdout stays readable; quiet unless asked.
  const log = createLogger(process.env.LOG_LEVEL ?? 'error', { stderr: true });

  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      // Reverse order of creation: workers and API before the context, database before its server, data dir last.
      for (const { what, run } of cleanups.reverse()) {
        try {
          await run();
        } catch (error) {
          process.stderr.write(`bench cleanup: ${what} failed: ${(error as Error).message}\n`);
        }
      }
    })();
    return stopped;
  };
  cleanups.push({ what: 'remove the scratch data dir', run: () => fs.rm(dataDir, { recursive: true, force: true }) });

  try {
    const config = loadConfig({
      ...process.env,
      DATA_DIR: dataDir,
      QUEUE_PREFIX: queuePrefix,
      // A port of its own, so an embedded Postgres never collides with a running molvault's.
      EMBEDDED_POSTGRES_PORT: process.env.EMBEDDED_POSTGRES_PORT ?? String(await freePort()),
      // Benchmarks measure molvault, not its per-user request limit.
      RATE_LIMIT_PER_MINUTE: process.env.RATE_LIMIT_PER_MINUTE ?? '0',
      ...options.env,
    });
    // The bench's own database on whatever server bootstrapServices finds (DATABASE_URL's or an embedded one), migrated.
    const services: Services = await bootstrapServices(config, log, { database: databaseName });
    cleanups.push({ what: 'stop the services the bench started', run: () => services.stop() });
    const databaseUrl = services.databaseUrl;
    if (!options.keepDatabase) cleanups.push({ what: `drop database ${databaseName}`, run: () => dropDatabase(databaseUrl) });

    const ctx = await createAppContext({ ...config, databaseUrl, redisUrl: services.redisUrl }, log);
    cleanups.push({ what: 'close the app context', run: () => closeAppContext(ctx) });
    cleanups.push({ what: `remove Redis keys ${queuePrefix}:*`, run: () => removeQueueKeys(ctx, queuePrefix) });

    const api = await startApiServer(ctx, 0, '127.0.0.1');
    cleanups.push({ what: 'close the API server', run: () => api.close() });

    if (options.workerQueues?.length) {
      const started: WorkerSet = await startWorkers(ctx, options.workerQueues);
      cleanups.push({ what: 'stop the workers', run: () => started.close() });
    }

    return {
      url: `http://127.0.0.1:${api.port}`,
      ctx,
      log,
      dataDir,
      queuePrefix,
      databaseUrl,
      postgresSource: config.databaseUrl ? 'DATABASE_URL' : 'embedded',
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Obliterates the bench's queues, then deletes any key left under its prefix (schedulers, meta, events). */
async function removeQueueKeys(ctx: AppContext, prefix: string): Promise<void> {
  await Promise.all(Object.values(ctx.queues).map((queue) => queue.obliterate({ force: true })));
  let cursor = '0';
  do {
    const [next, keys] = await ctx.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await ctx.redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** A user with a generous quota and an API token, made directly in the database as the CLI does. */
export async function createBenchUser(ctx: AppContext, quotaBytes: number): Promise<{ userId: string; token: string }> {
  const em = ctx.orm.em.fork();
  const user = await createUser(em, { email: `bench-${randomBytes(4).toString('hex')}@example.org`, name: 'benchmark', quotaBytes });
  const { token } = await createToken(em, user.id, { name: 'benchmark' });
  return { userId: user.id, token };
}

/** POST /v1/projects through the real API; returns the project id. */
export async function createProject(baseUrl: string, token: string, name: string): Promise<string> {
  const response = await fetch(`${baseUrl}/v1/projects`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, description: 'made by a benchmark; removed with its database' }),
  });
  const body = (await response.json()) as { id?: string };
  if (response.status !== 201 || !body.id) throw new Error(`creating the project answered ${response.status}: ${JSON.stringify(body)}`);
  return body.id;
}

/** Runs cleanup on Ctrl-C / SIGTERM too, so an interrupted run leaves nothing behind; `interrupt` first tells the run to stop. */
export function stopOnSignals(stop: () => Promise<void>, interrupt?: () => void): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: cleaning up...\n`);
      interrupt?.();
      void stop().finally(() => process.exit(130));
    });
  }
}

/** A bad command-line option: reported without a stack trace. */
export class UsageError extends Error {}

export const MB = 1_000_000;

export function formatMB(bytes: number): string {
  return (bytes / MB).toFixed(1);
}
