import { Job } from 'bullmq';
import { afterAll, beforeAll } from 'vitest';
import { EnginePool } from '../../src/engines/pool.js';
import type { JobContext } from '../../src/jobs/define.js';
import { CpuPool } from '../../src/pool/cpuPool.js';
import { type Stack, startStack } from './stack.js';

export interface StageHarness {
  /** The stack, started by the harness's beforeAll. */
  readonly stack: Stack;
  /** A fresh job context: the stack's services, the pools, an EntityManager of its own and an ingest job to report progress on. */
  context(): Promise<JobContext>;
}

/**
 * For tests that drive the upload stages themselves, as a worker's job would: a stack without
 * workers, and a CPU pool and an engine pool of the test's own. Call it inside `describe`: it
 * registers the beforeAll and afterAll that start and stop them.
 */
export function stageHarness(cpuThreads = 2): StageHarness {
  let stack: Stack | undefined;
  let cpu: CpuPool | undefined;
  let engines: EnginePool | undefined;
  const started = () => {
    if (!stack || !cpu || !engines) throw new Error('stageHarness: used before its beforeAll ran');
    return { stack, cpu, engines };
  };

  beforeAll(async () => {
    stack = await startStack({ workers: false });
    cpu = new CpuPool(cpuThreads, 60_000, 2048);
    engines = new EnginePool(stack.ctx.engineCatalog, stack.ctx.config.engines, stack.ctx.log);
  });
  afterAll(async () => {
    await cpu?.close();
    await stack?.stop();
  });

  return {
    get stack() {
      return started().stack;
    },
    async context() {
      const { stack, cpu, engines } = started();
      return { ...stack.ctx, cpu, engines, em: stack.ctx.orm.em.fork(), job: await Job.create(stack.ctx.queues.ingest, 'ingest', {}) };
    },
  };
}
