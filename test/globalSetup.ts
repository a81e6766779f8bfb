import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { connectOrm, migrate } from '../src/db/orm.js';
import { createLogger } from '../src/lib/logger.js';
import { freePort } from '../src/runtime/net.js';
import { dropDatabase, ensureDatabase, startEmbeddedPostgres, withDatabase } from '../src/runtime/postgres.js';
import { findOrStartRedis } from '../src/runtime/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
    runId: string;
  }
}

/**
 * Finds or starts the services the way `molvault start` does (TEST_DATABASE_URL / DATABASE_URL,
 * else an embedded Postgres; REDIS_URL, else local Redis, else redis-server), then gives this run
 * a database of its own, migrated, and a run id for queue prefixes. Two runs never collide.
 */
export default async function setup(project: TestProject) {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', { stderr: true });
  const runId = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const stops: (() => Promise<void>)[] = [];
  let serverUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!serverUrl) {
    // A cluster of this run's own (initdb takes about a second), so concurrent runs never share one.
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-test-pg-'));
    await fs.chmod(parent, 0o755); // as root, Postgres runs as "postgres", which must reach its data directory
    const dir = path.join(parent, 'data');
    const pg = await startEmbeddedPostgres(dir, await freePort(), log);
    stops.push(async () => {
      await pg.stop();
      await fs.rm(path.dirname(dir), { recursive: true, force: true });
    });
    serverUrl = pg.serverUrl;
    process.stderr.write(`[molvault tests] embedded Postgres from ${dir}\n`);
  } else {
    process.stderr.write('[molvault tests] Postgres from TEST_DATABASE_URL / DATABASE_URL\n');
  }
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-test-redis-'));
  const redis = await findOrStartRedis(process.env.REDIS_URL, scratch, log);
  stops.push(redis.stop);
  process.stderr.write(`[molvault tests] Redis at ${redis.url}, queue prefix mvtest-${runId}-*\n`);

  const databaseUrl = withDatabase(serverUrl, `molvault_test_${runId}`);
  await ensureDatabase(databaseUrl);
  const orm = await connectOrm(databaseUrl);
  await migrate(orm);
  await orm.close();

  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', redis.url);
  project.provide('runId', runId);

  return async () => {
    await dropDatabase(databaseUrl).catch((error) => process.stderr.write(`could not drop the test database: ${error}\n`));
    for (const stop of stops.reverse()) await stop();
    await fs.rm(scratch, { recursive: true, force: true });
  };
}
