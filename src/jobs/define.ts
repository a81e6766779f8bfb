import type { Job } from 'bullmq';
import type { EnginePool } from '../engines/pool.js';
import type { JobContract } from '../queue/contract.js';
import type { WorkContext } from '../runtime/context.js';

/** What a handler gets: the shared services, the CPU and engine pools, its own forked EntityManager, and its job. */
export interface JobContext extends WorkContext {
  engines: EnginePool;
  job: Job;
}

/** How a job runs, bound to its contract (src/queue/jobs.ts); the contract's fields are spread in for convenience. */
export interface JobHandler<Data = unknown> extends JobContract<Data> {
  contract: JobContract<Data>;
  handle(data: Data, ctx: JobContext): Promise<unknown>;
  /** Runs once retries are exhausted, to record the failure where users look (Postgres). */
  onFinalFailure?(data: Data, error: Error, ctx: Omit<JobContext, 'job'>): Promise<void>;
}

export function handleJob<Data>(contract: JobContract<Data>, handler: Pick<JobHandler<Data>, 'handle' | 'onFinalFailure'>): JobHandler<Data> {
  return { ...contract, contract, handle: handler.handle, onFinalFailure: handler.onFinalFailure };
}
