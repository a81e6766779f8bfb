import { spawn } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseJobsOfDeadProcesses, WORKER_NAME } from '../src/workers/deadHolders.js';
import { client, userFactory, waitForUpload } from './helpers/factories.js';
import { type MolvaultProcess, startMolvault } from './helpers/processes.js';
import { type Stack, startStack } from './helpers/stack.js';

/** A lock far longer than the test waits: a job handed over in time was not handed over by its lapse. */
/** The upload is parsed by the validate job this test kills, not by the API as it arrives. */
const LONG_LOCK = { WORKER_LOCK_MS: '120000', WORKER_STALLED_INTERVAL_MS: '1000', PARSE_ON_RECEIPT: 'false' };

/** A PDB file large enough that its parse is still running when the test kills the worker reading it. */
function largePdb(lines: number): string {
  const line = (i: number) =>
    `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA A${String((i % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`;
  return Array.from({ length: lines }, (_, i) => line(i)).join('');
}

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('the jobs of a dead worker process', () => {
  let stack: Stack;
  const processes: MolvaultProcess[] = [];

  beforeAll(async () => {
    stack = await startStack({ workers: false, env: LONG_LOCK });
  });
  afterAll(async () => {
    for (const worker of processes) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    }
    await stack?.stop();
  });

  function startWorker(): MolvaultProcess {
    const config = stack.ctx.config;
    const worker = startMolvault(['worker'], {
      ...LONG_LOCK,
      DATABASE_URL: config.databaseUrl,
      REDIS_URL: config.redisUrl,
      QUEUE_PREFIX: config.queuePrefix,
      DATA_DIR: config.dataDir,
      PARSE_THREADS: '1',
      LOG_LEVEL: 'info',
    });
    processes.push(worker);
    return worker;
  }

  it.skipIf(process.platform !== 'linux' /* skipped when not on Linux: a pid namespace is read from /proc */)(
    'are handed back by a worker started on the same host, long before their locks lapse (skipped off Linux, where the pid namespace is unknown)',
    async () => {
      const user = await userFactory(stack.ctx);
      const api = client(stack.url, user.token);
      const projectId = (await api.post('/v1/projects', { name: 'takeover' })).body.id;
      const first = startWorker();
      await first.waitForLog(/workers started/);
      const accepted = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'big.pdb', content: largePdb(400_000) });
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
      const uploadId = accepted.body.upload.id as string;
      const validate = stack.ctx.queues.validate;
      const jobId = `validate-${uploadId}`;
      // The first worker is parsing it: kill it there.
      await expect
        .poll(
          async () => {
            const job = await validate.getJob(jobId);
            return job && (await job.getState()) === 'active' ? job.processedBy : undefined;
          },
          { timeout: 120_000, interval: 20 },
        )
        .toMatch(new RegExp(`:${first.child.pid}$`));
      const firstStart = (await validate.getJob(jobId))?.processedOn;
      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));
      const killedAt = Date.now();

      const second = startWorker();
      await second.waitForLog(/workers started/);
      expect(second.logged(/released the jobs of dead worker processes/)[0]).toMatchObject({ released: { validate: [jobId] } });
      // Taken over by the new worker well within the lock (120 s) it would otherwise have waited out.
      await expect
        .poll(
          async () => {
            const job = await validate.getJob(jobId);
            return job?.processedOn !== firstStart ? job?.processedBy : undefined;
          },
          { timeout: 60_000, interval: 50 },
        )
        .toMatch(new RegExp(`:${second.child.pid}$`));
      expect(Date.now() - killedAt).toBeLessThan(60_000);
      const upload = await waitForUpload(api, uploadId, 180_000);
      expect(upload.state).toBe('stored');
      // It went back through BullMQ's stalled check, counted as a stall like any other.
      expect(await stack.ctx.redis.hget(validate.toKey(jobId), 'stc')).toBe('1');
      expect(second.notJson()).toEqual([]);
    },
    400_000,
  );

  it.skipIf(process.platform !== 'linux' /* skipped when not on Linux: a pid namespace is read from /proc */)(
    'leave the locks of live holders, of other hosts and of unknown names alone, and release only a dead holder’s (skipped off Linux)',
    async () => {
      const redis = new Redis(stack.ctx.config.redisUrl, { maxRetriesPerRequest: null });
      const queue = new Queue('diff', { connection: redis, prefix: `${stack.ctx.config.queuePrefix}-release` });
      try {
        const [host, namespace] = WORKER_NAME.split(':');
        const dead = await deadPid();
        const holders = {
          live: `${host}:${namespace}:${process.ppid}`,
          otherHost: `not-${host}:${namespace}:${dead}`,
          otherNamespace: `${host}:1:${dead}`,
          unnamed: 'some-worker',
          dead: `${host}:${namespace}:${dead}`,
        };
        for (const [id, holder] of Object.entries(holders)) {
          await redis.rpush(queue.toKey('active'), id);
          await redis.hset(queue.toKey(id), 'pb', holder);
          await redis.set(`${queue.toKey(id)}:lock`, `token-${id}`, 'PX', 120_000);
        }
        expect(await releaseJobsOfDeadProcesses(redis, [queue])).toEqual({ diff: ['dead'] });
        for (const id of Object.keys(holders)) expect(await redis.exists(`${queue.toKey(id)}:lock`)).toBe(id === 'dead' ? 0 : 1);
        // Nothing left to release: a second look changes nothing.
        expect(await releaseJobsOfDeadProcesses(redis, [queue])).toEqual({});
      } finally {
        await queue.obliterate({ force: true }).catch(() => {});
        await queue.close();
        redis.disconnect();
      }
    },
    60_000,
  );
});
