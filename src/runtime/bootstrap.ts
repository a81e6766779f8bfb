import path from 'node:path';
import type { Config } from '../config/index.js';
import { connectOrm, migrate } from '../db/orm.js';
import { infrastructureCause } from '../lib/infrastructure.js';
import type { Logger } from '../lib/logger.js';
import { ensureDatabase, type PostgresHandle, startEmbeddedPostgres, withDatabase } from './postgres.js';
import { findOrStartRedis, type RedisHandle } from './redis.js';

export interface Services {
  databaseUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

/**
 * Finds or starts what molvault needs: DATABASE_URL or an embedded Postgres under DATA_DIR;
 * REDIS_URL, a local Redis, or a redis-server of its own. Then migrates the database.
 */
export async function bootstrapServices(
  config: Config,
  log: Logger,
  options: {
    migrate?: boolean;
    /** A database name of the caller's own (benchmarks, tools) instead of the configured one. */
    database?: string;
    /** false for one-shot commands, which need no queues. */
    redis?: boolean;
    /**
     * How long to wait for a Postgres that does not answer yet (restarting, say) before giving up;
     * servers wait, one-shot commands (the default, 0) say so at once.
     */
    waitForDatabaseMs?: number;
  } = {},
): Promise<Services> {
  let postgres: PostgresHandle | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    postgres = await startEmbeddedPostgres(path.join(config.dataDir, 'postgres'), config.embeddedPostgresPort, log, {
      sharedBuffersMb: config.embeddedPostgresSharedBuffersMb,
    });
    databaseUrl = withDatabase(postgres.serverUrl, 'molvault');
  }
  if (options.database) databaseUrl = withDatabase(databaseUrl, options.database);
  let redis: RedisHandle | undefined;
  try {
    await whenReachable(() => ensureDatabase(databaseUrl as string), options.waitForDatabaseMs ?? 0, log);
    redis = options.redis === false ? undefined : await findOrStartRedis(config.redisUrl, config.dataDir, log);
    if (options.migrate !== false) {
      const orm = await connectOrm(databaseUrl, log);
      try {
        const applied = await migrate(orm);
        if (applied.length) log.info({ applied }, 'database migrated');
      } finally {
        await orm.close();
      }
    }
  } catch (error) {
    await redis?.stop();
    await postgres?.stop();
    throw error;
  }
  return {
    databaseUrl,
    redisUrl: redis?.url ?? '',
    async stop() {
      await redis?.stop();
      await postgres?.stop();
    },
  };
}

/**
 * Runs `attempt` until it stops failing for the infrastructure's sake (Postgres refusing
 * connections or still starting up), waiting a doubling delay up to 5 s, for at most `waitMs`; any
 * other error, or the last one, is thrown. A server started while its database restarts comes up
 * when the database does, instead of exiting.
 */
async function whenReachable(attempt: () => Promise<void>, waitMs: number, log: Logger): Promise<void> {
  const started = Date.now();
  for (let delay = 250; ; delay = Math.min(5_000, delay * 2)) {
    try {
      return await attempt();
    } catch (error) {
      if (!infrastructureCause(error) || Date.now() - started + delay > waitMs) throw error;
      log.warn({ err: error, retryInMs: delay }, 'Postgres does not answer yet; waiting for it');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
