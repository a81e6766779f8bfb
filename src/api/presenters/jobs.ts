import type { Job } from 'bullmq';

/** A job as the API shows it; BullMQ's internal waiting states read as "waiting". */
export async function presentJob(job: Job) {
  const rawState = await job.getState();
  const state = rawState === 'prioritized' || rawState === 'waiting-children' ? 'waiting' : rawState;
  return {
    id: job.id as string,
    queue: job.queueName,
    name: job.name,
    state,
    progress: job.progress,
    attempts: job.attemptsMade,
    ...(state === 'completed' ? { result: job.returnvalue } : {}),
    ...(state === 'failed' ? { error: { code: 'job_failed', message: job.failedReason } } : {}),
    createdAt: new Date(job.timestamp).toISOString(),
    ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
  };
}
