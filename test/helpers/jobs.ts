import type { JobContract } from '../../src/queue/contract.js';
import { enqueue } from '../../src/queue/enqueue.js';
import type { AppContext } from '../../src/runtime/context.js';

/** Enqueues a job the way the app does and waits for the workers to finish it; returns its result. */
export async function runJob<Data>(ctx: AppContext, definition: JobContract<Data>, data: Data, timeoutMs = 60_000): Promise<any> {
  const jobId = await enqueue(ctx.queues, definition, data);
  const queue = ctx.queues[definition.queue];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await queue.getJob(jobId);
    const state = job ? await job.getState() : 'missing';
    // Read again: the job may have finished between reading it and asking its state.
    if (state === 'completed') return (await queue.getJob(jobId))?.returnvalue;
    if (state === 'failed') throw new Error(`job ${jobId} failed: ${job?.failedReason}`);
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
