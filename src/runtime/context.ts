import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { WorkEvents } from '../db/notify.js';
import { connectOrm, type Orm } from '../db/orm.js';
import { EngineCatalog } from '../engines/pool.js';
import { infrastructureCause, rememberEndpoint } from '../lib/infrastructure.js';
import type { Logger } from '../lib/logger.js';
import { CpuPool } from '../pool/cpuPool.js';
import { closeQueues, createQueues, type QueueSet, redisConnection } from '../queue/queues.js';
import { createSearchIndex } from '../search/create.js';
import type { SearchIndex } from '../search/types.js';
import type { BlobStore } from '../storage/blobStore.js';
import { openStores } from '../storage/create.js';
import type { Staging } from '../storage/staging.js';
import { assertBlobStoreAgrees } from '../storage/switch.js';

/** The shared services every process role (api, worker) is built from. */
export interface AppContext {
  config: Config & { databaseUrl: string; redisUrl: string };
  log: Logger;
  orm: Orm;
  redis: Redis;
  queues: QueueSet;
  blobs: BlobStore;
  staging: Staging;
  search: SearchIndex;
  workEvents: WorkEvents;
  /** Conversion engines installed here, with versions, found once at start. */
  engineCatalog: EngineCatalog;
  /**
   * This process's CPU pool for the odd unpacking outside a job (a draft sent gzip-compressed to the
   * API), started on first use so an API that never needs it runs no threads. Workers have their own.
   */
  sharedCpuPool(): CpuPool;
}

/**
 * What work outside a request runs with (a job, the upload stages it calls): the shared services,
 * the CPU pool and an EntityManager of its own; and the job it runs in, if any, to report progress on.
 */
export interface WorkContext extends AppContext {
  cpu: CpuPool;
  em: EntityManager;
  job?: Pick<Job, 'updateProgress'>;
}

const lazyPools = new WeakMap<AppContext, CpuPool>();

export async function createAppContext(config: AppContext['config'], log: Logger): Promise<AppContext> {
  rememberEndpoint('postgres', config.databaseUrl);
  rememberEndpoint('redis', config.redisUrl);
  const orm = await connectOrm(config.databaseUrl, log);
  const redis = redisConnection(config.redisUrl, { failFast: true });
  // Commands fail while it is away, so wait for the first connection before anything uses it.
  if (redis.status !== 'ready')
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', () => resolve());
      redis.once('end', () => reject(new Error(`Redis at ${config.redisUrl} could not be reached`)));
    });
  redis.on('error', (error) => log.warn({ err: error }, 'redis connection error'));
  const queues = createQueues(redis, config.queuePrefix);
  // Each queue re-emits its connection's errors, and BullMQ prints one nobody listens for as a raw
  // stack trace: the connection's own line above says it once, so the queues' copies go to debug.
  for (const [name, queue] of Object.entries(queues))
    queue.on('error', (error) => log[infrastructureCause(error) ? 'debug' : 'warn']({ err: error, queue: name }, 'queue error'));
  const search = await createSearchIndex(config, orm, log);
  await search.prepare();
  // A process configured for another store than the one the blobs were moved to must not start.
  await assertBlobStoreAgrees((sql, params) => orm.em.fork().getConnection().execute(sql, params), config);
  const { blobs, staging } = await openStores(config);
  const engineCatalog = await EngineCatalog.detect(config.engines);
  engineCatalog.report(log);
  const ctx: AppContext = {
    config,
    log,
    orm,
    redis,
    queues,
    blobs,
    staging,
    search,
    workEvents: new WorkEvents(config.databaseUrl, log),
    engineCatalog,
    sharedCpuPool() {
      let pool = lazyPools.get(ctx);
      if (!pool) {
        pool = new CpuPool(config.parseThreads, config.parseTimeoutMs, config.parseMaxMemoryMb, 0, config.pdbSplitMinBytes);
        lazyPools.set(ctx, pool);
      }
      return pool;
    },
  };
  return ctx;
}

const workerPools = new WeakMap<AppContext, CpuPool>();

/**
 * A worker's CPU pool offered to the rest of its process (startWorkers), until the returned
 * function withdraws it: an API in the same process (`molvault start`) parses uploads as they
 * arrive in the workers' warm threads instead of starting threads of its own.
 */
export function offerWorkerPool(ctx: AppContext, pool: CpuPool): () => void {
  if (!workerPools.has(ctx)) workerPools.set(ctx, pool);
  return () => {
    if (workerPools.get(ctx) === pool) workerPools.delete(ctx);
  };
}

/**
 * The pool an upload is parsed in as it arrives (api/intake/receipt.ts): the workers' of this
 * process, if it runs any, with one thread always left to their jobs; else the shared one.
 */
export function receiptCpuPool(ctx: AppContext): { pool: CpuPool; leave: number } {
  const workers = workerPools.get(ctx);
  return workers ? { pool: workers, leave: 1 } : { pool: ctx.sharedCpuPool(), leave: 0 };
}

export async function closeAppContext(ctx: AppContext): Promise<void> {
  await ctx.workEvents.close();
  await lazyPools.get(ctx)?.close();
  await closeQueues(ctx.queues);
  await ctx.search.close();
  await ctx.blobs.close();
  ctx.redis.disconnect();
  await ctx.orm.close();
}
