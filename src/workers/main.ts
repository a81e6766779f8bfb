import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueName } from '../config/index.js';
import { EnginePool } from '../engines/pool.js';
import type { JobHandler } from '../jobs/define.js';
import { checkRegistry, JOBS } from '../jobs/registry.js';
import { codeSource } from '../lib/codeSource.js';
import { cappedBackoffMs, InfrastructureError, infrastructureCause, infrastructureWaitOf, isInfrastructureError } from '../lib/infrastructure.js';
import { CpuPool } from '../pool/cpuPool.js';
import { backupJob, convertJob } from '../queue/jobs.js';
import { redisConnection } from '../queue/queues.js';
import { type AppContext, offerWorkerPool } from '../runtime/context.js';
import { isStorageFull } from '../storage/freeSpace.js';
import { releaseJobsOfDeadProcesses, WORKER_NAME } from './deadHolders.js';
import { registerBackupSchedule, registerSchedules } from './scheduler.js';
import { waitOutFullStorage } from './storageFull.js';
import { startWatchdog } from './watchdog.js';

export interface WorkerSet {
  workers: Worker[];
  cpu: CpuPool;
  engines: EnginePool;
  /** Stops taking jobs, lets active ones finish (up to the shutdown timeout), then closes the pool. */
  close(): Promise<void>;
}

/** Starts one BullMQ Worker per queue with the configured concurrency, dispatching by job name. */
export async function startWorkers(ctx: AppContext, queues: readonly QueueName[]): Promise<WorkerSet> {
  const registry = checkRegistry(JOBS);
  // First, so a worker started after Redis lost its data has the lost jobs re-added while it starts.
  const watchdog = startWatchdog(ctx, queues);
  const cpu = new CpuPool(
    ctx.config.parseThreads,
    ctx.config.parseTimeoutMs,
    ctx.config.parseMaxMemoryMb,
    ctx.config.backgroundNice,
    ctx.config.pdbSplitMinBytes,
    true,
  );
  // An API in this process parses uploads as they arrive in these threads (api/intake/receipt.ts).
  const withdrawPool = offerWorkerPool(ctx, cpu);
  const engines = new EnginePool(ctx.engineCatalog, ctx.config.engines, ctx.log);
  // Long-lived engines (ChimeraX) start now, so the first conversion does not wait for them.
  if (queues.includes(convertJob.queue)) {
    await engines.warm().catch((error) => ctx.log.error({ err: error }, 'could not start the long-lived engines'));
    const swept = await engines.sweepScratch().catch(() => []);
    if (swept.length > 0) ctx.log.info({ swept }, 'removed scratch directories a crashed worker left behind');
  }
  // Before this process takes jobs (and runs its first stalled check): the jobs a dead worker
  // process of this host still held go back now, not once their locks lapse.
  try {
    const released = await releaseJobsOfDeadProcesses(
      ctx.redis,
      queues.map((queue) => ctx.queues[queue]),
    );
    if (Object.keys(released).length > 0) ctx.log.warn({ released }, 'released the jobs of dead worker processes on this host');
  } catch (error) {
    ctx.log.warn({ err: error }, 'could not look for jobs held by dead worker processes; their locks will lapse');
  }
  const workers: Worker[] = [];
  const connections: Redis[] = [];
  for (const queue of queues) {
    const processor = async (job: Job, token?: string) => {
      const definition = registry.get(job.name);
      if (!definition || definition.queue !== queue) throw new UnrecoverableError(`no handler for job "${job.name}" on queue "${queue}"`);
      const parsed = definition.data.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`job data is invalid: ${parsed.error.message}`);
      const em = ctx.orm.em.fork();
      try {
        return await definition.handle(parsed.data as never, { ...ctx, cpu, engines, em, job });
      } catch (error) {
        // A full disk waits, uncounted, for as long as it takes: space comes back when someone frees it.
        if (!(error instanceof UnrecoverableError) && isStorageFull(error))
          return waitOutFullStorage(job, token, error, ctx.config.storageFullRetryMs, ctx.log);
        const cause = error instanceof UnrecoverableError ? undefined : infrastructureCause(error);
        if (!cause) throw error;
        // A sick system is not a bad file: wait and try again, without spending one of the job's
        // attempts (those are for our own faults), for as long as INFRA_RETRY_FOR_MS allows.
        if (Date.now() - job.timestamp >= ctx.config.infraRetryForMs) throw new InfrastructureError(cause, error);
        const delay = cappedBackoffMs(infrastructureWaitOf(job), ctx.config.infraRetryBaseDelayMs, ctx.config.infraRetryMaxDelayMs);
        ctx.log.warn({ queue, jobId: job.id, infrastructure: cause, delayMs: delay, err: (error as Error).message }, 'job waits for the infrastructure');
        await job.moveToDelayed(Date.now() + delay, token);
        throw new DelayedError();
      }
    };
    // BullMQ treats a passed-in connection as shared and leaves it open: close() below ends it.
    const connection = redisConnection(ctx.config.redisUrl);
    connections.push(connection);
    const worker = new Worker(queue, processor, {
      connection,
      prefix: ctx.config.queuePrefix,
      // Stored on every job it takes (processedBy): which process has a job (see deadHolders.ts).
      name: WORKER_NAME,
      concurrency: ctx.config.concurrency[queue],
      // Parsing runs off-thread, so the event loop stays free to renew locks. If this process dies,
      // the lock lapses and another worker takes the job over (handlers are idempotent).
      lockDuration: ctx.config.workerLockMs,
      stalledInterval: ctx.config.workerStalledIntervalMs,
      maxStalledCount: ctx.config.workerMaxStalledCount,
      autorun: true,
    });
    worker.on('failed', (job, error) => {
      if (!job) return;
      const definition = registry.get(job.name) as JobHandler<unknown> | undefined;
      const final = error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      ctx.log[final ? 'warn' : 'info']({ queue, jobId: job.id, attempts: job.attemptsMade, err: error.message }, final ? 'job failed' : 'job will retry');
      // A job given up for the infrastructure's sake (a stall limit, an outage past INFRA_RETRY_FOR_MS)
      // records nothing: Postgres still calls its work unfinished, and reconcile starts it again.
      if (final && isInfrastructureError(error)) return;
      if (final && definition?.onFinalFailure && !(error instanceof UnrecoverableError || error.name === 'UnrecoverableError')) {
        definition
          .onFinalFailure(job.data, error, { ...ctx, cpu, engines, em: ctx.orm.em.fork() })
          .catch((e) => ctx.log.error({ err: e }, 'recording a job failure failed'));
      }
    });
    // Its worker stopped renewing the lock (it died, or was starved long enough for the lock to lapse): it runs again elsewhere.
    worker.on('stalled', (jobId) => ctx.log.warn({ queue, jobId }, 'job stalled; it was moved back to wait for another worker'));
    // Redis away makes every queue's worker say so on each reconnect attempt: a warning, not an error each time.
    worker.on('error', (error) => ctx.log[infrastructureCause(error) ? 'warn' : 'error']({ queue, err: error }, 'worker error'));
    workers.push(worker);
  }
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    await registerSchedules(ctx, queues);
    if (queues.includes(backupJob.queue)) await registerBackupSchedule(ctx);
  } catch (error) {
    await watchdog.stop();
    throw error;
  }
  ctx.log.info({ queues, threads: ctx.config.parseThreads, code: codeSource() }, 'workers started');
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await watchdog.stop();
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ctx.config.shutdownTimeoutMs).unref());
      const graceful = Promise.all(workers.map((w) => w.close())).then(() => 'done' as const);
      if ((await Promise.race([graceful, timeout])) === 'timeout') {
        ctx.log.warn('active jobs did not finish in time; releasing them for another worker');
        await Promise.all(workers.map((w) => w.close(true)));
      }
      for (const connection of connections) connection.disconnect();
      await engines.close();
      withdrawPool();
      await cpu.close();
    })();
    return closing;
  };
  return { workers, cpu, engines, close };
}
