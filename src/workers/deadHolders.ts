import { readlinkSync } from 'node:fs';
import os from 'node:os';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * The pid namespace this process runs in (Linux), or undefined. Two processes on hosts of the same
 * name (containers sharing a host's name) see each other's pids only when they share it.
 */
function pidNamespace(): string | undefined {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}

const HOST = os.hostname();
const NAMESPACE = pidNamespace() ?? '-';

/**
 * This process's name on every job it takes (BullMQ's processedBy): host, pid namespace ("-" where
 * unknown) and pid. It tells operators (and the chaos benchmark) which process has a job, and lets a
 * worker starting on the same host know that a job's holder is dead.
 */
export const WORKER_NAME = `${HOST}:${NAMESPACE}:${process.pid}`;

/** Whether a process of this pid namespace with this pid exists (one that is not ours counts: EPERM). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The holder's name on the job still the one we read: the lock is theirs, and goes. */
const RELEASE = `if redis.call('HGET', KEYS[1], 'pb') == ARGV[1] then return redis.call('DEL', KEYS[2]) end return 0`;

/**
 * Releases the locks of active jobs whose worker process is known to be dead: a process of this host
 * and pid namespace that no longer exists (killed, crashed, out of memory). Without this their jobs
 * wait until the lock lapses (WORKER_LOCK_MS) and a stalled check finds them; with it, a worker
 * restarted after a crash hands its predecessor's jobs back as it starts. A released job goes back
 * through BullMQ's stalled check like any other (counted against WORKER_MAX_STALLED_COUNT, so a file
 * that kills every worker that reads it still ends). A pid reused by a new process reads as alive:
 * that job waits for its lock as before. Returns the ids released, by queue.
 */
export async function releaseJobsOfDeadProcesses(redis: Redis, queues: Queue[]): Promise<Record<string, string[]>> {
  const released: Record<string, string[]> = {};
  if (NAMESPACE === '-') return released;
  for (const queue of queues) {
    const ids = await redis.lrange(queue.toKey('active'), 0, -1);
    for (const id of ids) {
      const key = queue.toKey(id);
      const holder = await redis.hget(key, 'pb');
      const [host, namespace, pid] = holder?.split(':') ?? [];
      if (!holder || host !== HOST || namespace !== NAMESPACE || !/^\d+$/.test(pid ?? '')) continue;
      if (Number(pid) === process.pid || alive(Number(pid))) continue;
      if (Number(await redis.eval(RELEASE, 2, key, `${key}:lock`, holder)) === 0) continue;
      released[queue.name] = [...(released[queue.name] ?? []), id];
    }
  }
  return released;
}
