import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import type { z } from 'zod';
import type { QueueName } from '../config/index.js';
import type { EnginePool } from '../engines/pool.js';
import type { CpuPool } from '../pool/cpuPool.js';
import type { AppContext } from '../runtime/context.js';

/** What a handler gets: the shared services, the CPU pool, and its own forked EntityManager. */
export interface JobContext extends AppContext {
  cpu: CpuPool;
  engines: EnginePool;
  em: EntityManager;
  job: Job;
}

export interface JobDefinition<Data = unknown> {
  name: string;
  queue: QueueName;
  data: z.ZodType<Data>;
  /** Deterministic id: enqueueing the same work twice yields one job. */
  jobId(data: Data): string;
  handle(data: Data, ctx: JobContext): Promise<unknown>;
  /** Runs once retries are exhausted, to record the failure where users look (Postgres). */
  onFinalFailure?(data: Data, error: Error, ctx: Omit<JobContext, 'job'>): Promise<void>;
}

/** A pipeline stage's result: what its job returns, and whether the next stage should run. */
export interface StageOutcome {
  next: boolean;
  result: unknown;
}

export function defineJob<Data>(definition: JobDefinition<Data>): JobDefinition<Data> {
  return definition;
}

/** Job ids are `<job name>-<subject id...>`, so the name (and through it the queue) is in the id. */
export function jobNameFromId(jobId: string): string {
  return jobId.split('-')[0] ?? '';
}
