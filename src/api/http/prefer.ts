import type { Job, Queue } from 'bullmq';
import type { Context } from 'koa';

/** `Prefer: wait=N` → N seconds (at most 60), or 0. */
export function preferWaitSeconds(header: string | undefined): number {
  const match = /(?:^|[,;\s])wait=(\d+)/i.exec(header ?? '');
  return match ? Math.min(60, Number(match[1])) : 0;
}

/**
 * The seconds a request asks to wait (`Prefer: wait=N`), and, when it asks, the answer says the
 * preference is honoured (`Preference-Applied: wait=N`, RFC 7240) whatever the wait ends in: the
 * work done (200/201) or still under way (202). Every route that can answer 202 calls this.
 */
export function preferredWait(koa: Context): number {
  const seconds = preferWaitSeconds(koa.get('prefer'));
  if (seconds > 0) koa.set('Preference-Applied', `wait=${seconds}`);
  return seconds;
}

/** Runs `check` until it returns a value or the deadline passes, sleeping with `pause` in between. */
export async function waitFor<T>(seconds: number, check: () => Promise<T | undefined>, pause: (ms: number) => Promise<void>): Promise<T | undefined> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await pause(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
}

/** Between two looks at work that sends no notification (a BullMQ job's state in Redis). */
const POLL_MS = 200;
export const poll = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.min(ms, POLL_MS)));

/** The job once it has ended (completed or failed) within `seconds`; undefined when it has not, or is gone. */
export async function waitForJobEnd(queue: Queue, jobId: string, seconds: number): Promise<Job | undefined> {
  if (seconds <= 0) return undefined;
  return waitFor(
    seconds,
    async () => {
      const job = await queue.getJob(jobId);
      if (!job) return undefined;
      const state = await job.getState();
      return state === 'completed' || state === 'failed' ? job : undefined;
    },
    poll,
  );
}
