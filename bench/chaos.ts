/**
 * Chaos benchmark: an operator's bad day, against real processes. A molvault of its own (a
 * `molvault api` process that owns an embedded Postgres on a scratch DATA_DIR, a redis-server of
 * its own, two `molvault worker` processes) imports N files (default 1,000) twice:
 *  1. without faults, timed;
 *  2. while worker processes are killed (SIGKILL, then started again) --kills times (default 10),
 *     Redis is flushed once (FLUSHALL) and the embedded Postgres is killed once (SIGKILL of the
 *     postmaster; the api process restarts it by itself).
 * It prints accepted, stored, rejected, failed, lost (accepted and never ended), duplicated (stored
 * versions beyond one per stored item) and the time to finish, against the fault-free run; with
 * them the items ended at each second, the jobs found stalled (in the fault-free run each one is a
 * false stall: nothing was killed), the CPU of molvault's own processes per item, and the load average.
 * Goal (issue 22): 0 lost, 0 duplicated, 0 failed, within 2x the fault-free time.
 *
 * Then it measures failover (--failover-rounds, default 3): a worker process killed while it parses
 * a large file, and the time until another worker process has taken the job over (WORKER_LOCK_MS and
 * WORKER_STALLED_INTERVAL_MS at their defaults unless set in the environment).
 *
 *   npm run bench:chaos -- [--files 1000] [--kills 10] [--timeout 1800] [--failover-rounds 3]
 *
 * Reconcile runs every RECONCILE_EVERY_MS and looks at work untouched for RECONCILE_AFTER_MS; this
 * benchmark sets both to 10 s (unless set in the environment) and prints them. Recovery from the
 * FLUSHALL no longer waits for them (a worker's watchdog finds that Redis lost its data and
 * reconciles at once), but the schedule's own passes still run at that period.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { freePort } from '../src/runtime/net.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO_ROOT, 'bin/molvault.js');
const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '1000' },
    kills: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '1800' },
    'failover-rounds': { type: 'string', default: '3' },
  },
});
const FILES = Number(values.files);
const KILLS = Number(values.kills);
const TIMEOUT_MS = Number(values.timeout) * 1000;
const FAILOVER_ROUNDS = Number(values['failover-rounds']);
/**
 * Where jobs found stalled are counted: the queues an import's jobs run on (the chunks run the
 * upload stages inline, and index what they stored), and validate, the failover probe's.
 */
const WATCHED_QUEUES = ['ingest', 'index', 'validate'] as const;

/**
 * CPU of molvault's own processes (the api and every worker, killed ones up to their kill; not
 * Postgres or Redis), from /proc: each child's ticks since the phase began (or since it was
 * launched) are added to `cpu.ticks` when it is killed and when a phase ends.
 */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const cpu = { ticks: 0, base: new Map<ChildProcess, number>() };
function ticksOf(child: ChildProcess): number | undefined {
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime, every thread
  } catch {
    return undefined;
  }
}
function settleCpu(child: ChildProcess) {
  const now = ticksOf(child);
  if (now === undefined) return;
  cpu.ticks += now - (cpu.base.get(child) ?? 0);
  cpu.base.set(child, now);
}
/** Starts counting a phase's CPU from now; returns a function that ends it, in seconds. */
function cpuPhase(): () => number {
  for (const child of children) cpu.base.set(child, ticksOf(child) ?? 0);
  cpu.ticks = 0;
  return () => {
    for (const child of children) settleCpu(child);
    return cpu.ticks / CLOCK_TICKS;
  };
}

const children = new Set<ChildProcess>();
function launch(args: string[], env: NodeJS.ProcessEnv, label: string): ChildProcess {
  // CHAOS_VERBOSE=1 shows what every process prints (their JSON logs, at LOG_LEVEL) on stderr.
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', process.env.CHAOS_VERBOSE ? 'pipe' : 'ignore', 'pipe'] });
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (chunk) => {
      if (process.env.CHAOS_VERBOSE) process.stderr.write(`[${label}] ${chunk}`);
    });
  children.add(child);
  cpu.base.set(child, 0);
  child.once('exit', () => children.delete(child));
  return child;
}
async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  settleCpu(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}
const loadAverage = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

async function main() {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-chaos-'));
  await fs.chmod(dataDir, 0o755);
  const [redisPort, pgPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const redisServer = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const databaseUrl = `postgres://postgres:molvault@127.0.0.1:${pgPort}/molvault`;
  const baseUrl = `http://127.0.0.1:${apiPort}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    EMBEDDED_POSTGRES_PORT: String(pgPort),
    EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: process.env.EMBEDDED_POSTGRES_SHARED_BUFFERS_MB ?? '256',
    REDIS_URL: redisUrl,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    RATE_LIMIT_PER_MINUTE: '0',
    BACKUP_SCHEDULE: 'off',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    RECONCILE_EVERY_MS: process.env.RECONCILE_EVERY_MS ?? '10000',
    RECONCILE_AFTER_MS: process.env.RECONCILE_AFTER_MS ?? '10000',
    // The failover probe kills a worker while its validate job parses the probe's upload: the API
    // must leave that parse to the validate stage (an import's files are never parsed on receipt).
    PARSE_ON_RECEIPT: 'false',
  };
  delete env.DATABASE_URL;
  const cleanup = async () => {
    for (const child of [...children]) await kill(child);
    const pid = Number((await fs.readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    redisServer.kill('SIGKILL');
    await sleep(500);
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    console.log(
      `chaos: ${FILES} files, ${KILLS} worker kills, 1 FLUSHALL, 1 Postgres kill; RECONCILE_EVERY_MS=${env.RECONCILE_EVERY_MS}, RECONCILE_AFTER_MS=${env.RECONCILE_AFTER_MS}`,
    );
    const migrate = launch(['migrate'], env, 'migrate');
    const code = await new Promise((resolve) => migrate.once('exit', resolve));
    if (code !== 0) throw new Error(`molvault migrate exited with ${code}`);
    // The api process owns (and supervises) the embedded Postgres.
    launch(['api'], env, 'api');
    await waitReady(baseUrl);
    const token = await createUser(databaseUrl);
    const workerEnv = { ...env, DATABASE_URL: databaseUrl, PARSE_THREADS: '1' };
    const workers = [launch(['worker'], workerEnv, 'worker-0'), launch(['worker'], workerEnv, 'worker-1')];

    const config = loadConfig({ ...workerEnv });
    console.log(
      `workers: WORKER_LOCK_MS=${config.workerLockMs}, WORKER_STALLED_INTERVAL_MS=${config.workerStalledIntervalMs}, WATCHDOG_EVERY_MS=${config.watchdogEveryMs}; load average ${loadAverage()}`,
    );
    // Jobs found stalled (their lock lapsed): in the fault-free run every one is a false stall.
    const { QueueEvents } = await import('bullmq');
    const stalls = { count: 0 };
    const eventConnections: Redis[] = [];
    const listeners = WATCHED_QUEUES.map((queue) => {
      const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
      connection.on('error', () => {});
      eventConnections.push(connection);
      const events = new QueueEvents(queue, { connection, prefix: config.queuePrefix });
      events.on('stalled', () => stalls.count++);
      events.on('error', () => {});
      return events;
    });
    await Promise.all(listeners.map((events) => events.waitUntilReady()));

    let endCpu = cpuPhase();
    const calm = await runImport(baseUrl, token, databaseUrl, 'calm', async () => {});
    const calmCpu = endCpu();
    const calmStalls = stalls.count;
    console.log(`fault-free: ${JSON.stringify({ ...calm, stalledJobs: calmStalls, ...cpuFigures(calmCpu, calm.accepted) })}; load average ${loadAverage()}`);
    endCpu = cpuPhase();
    const faults: string[] = [];
    const storm = await runImport(baseUrl, token, databaseUrl, 'storm', async (started) => {
      const span = calm.seconds * 1000;
      const plan: { at: number; what: string }[] = [];
      for (let i = 0; i < KILLS; i++) plan.push({ at: (span * (i + 0.5)) / (KILLS + 1), what: `kill worker-${i % 2}` });
      plan.push({ at: span * 0.35, what: 'flushall' });
      plan.push({ at: span * 0.65, what: 'kill postgres' });
      plan.sort((a, b) => a.at - b.at);
      for (const step of plan) {
        const wait = started + step.at - Date.now();
        if (wait > 0) await sleep(wait);
        if (step.what === 'flushall') {
          const admin = new Redis(redisUrl);
          await admin.flushall();
          admin.disconnect();
        } else if (step.what === 'kill postgres') {
          const pid = Number((await fs.readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
          process.kill(pid, 'SIGKILL');
        } else {
          const index = Number(step.what.slice(-1));
          await kill(workers[index] as ChildProcess);
          workers[index] = launch(['worker'], workerEnv, `worker-${index}`);
        }
        faults.push(`${step.what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    });
    const stormCpu = endCpu();
    console.log(`faults: ${faults.join('; ')}`);
    console.log(
      `with faults: ${JSON.stringify({ ...storm, stalledJobs: stalls.count - calmStalls, ...cpuFigures(stormCpu, storm.accepted) })}; load average ${loadAverage()}`,
    );
    console.log(
      `chaos result: accepted ${storm.accepted}, stored ${storm.stored}, rejected ${storm.rejected}, failed ${storm.failed}, lost ${storm.lost}, ` +
        `duplicated ${storm.duplicated}; ${storm.seconds.toFixed(1)} s vs ${calm.seconds.toFixed(1)} s without faults (${(storm.seconds / calm.seconds).toFixed(2)}x)`,
    );
    for (const worker of workers) await kill(worker);
    const beforeFailover = stalls.count;
    const failover = await measureFailover(baseUrl, token, redisUrl, workerEnv);
    for (const events of listeners) await events.close();
    // QueueEvents leaves a connection it was given open.
    for (const connection of eventConnections) connection.disconnect();
    console.log(`failover: ${JSON.stringify({ ...failover, stalledJobs: stalls.count - beforeFailover })}; load average ${loadAverage()}`);
  } finally {
    await cleanup();
  }
}

function cpuFigures(seconds: number, items: number) {
  return { cpuSeconds: Number(seconds.toFixed(1)), cpuMsPerItem: Number(((seconds * 1000) / Math.max(1, items)).toFixed(1)) };
}

async function waitReady(baseUrl: string) {
  const started = Date.now();
  for (;;) {
    const ok = await fetch(`${baseUrl}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return;
    if (Date.now() - started > 300_000) throw new Error('molvault api did not become ready');
    await sleep(250);
  }
}

async function createUser(databaseUrl: string): Promise<string> {
  const { connectOrm } = await import('../src/db/orm.js');
  const { createLogger } = await import('../src/lib/logger.js');
  const { createToken, createUser } = await import('../src/services/auth/auth.js');
  const orm = await connectOrm(databaseUrl, createLogger('silent'));
  try {
    const em = orm.em.fork();
    const user = await createUser(em, { email: `chaos-${Date.now()}@example.org`, role: 'user', quotaBytes: 100 * 1024 ** 3 });
    return (await createToken(em, user.id, { name: 'chaos' })).token;
  } finally {
    await orm.close();
  }
}

/** Fetch that keeps trying while the system is away (503, a refused connection): a patient client. */
async function patient(url: string, init: RequestInit & { token: string }): Promise<Response> {
  for (;;) {
    try {
      const response = await fetch(url, { ...init, headers: { ...(init.headers as object), authorization: `Bearer ${init.token}` } });
      if (response.status !== 503 && response.status !== 502) return response;
    } catch {
      // connection refused or reset: try again
    }
    await sleep(500);
  }
}

async function runImport(baseUrl: string, token: string, databaseUrl: string, label: string, faults: (started: number) => Promise<void>) {
  const project: any = await (
    await patient(`${baseUrl}/v1/projects`, { method: 'POST', token, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: label }) })
  ).json();
  const bases = await Promise.all(
    ['ngl_1crn.pdb', 'chemfiles_insertion-code.pdb', 'ngl_multi-models-example.pdb'].map((n) => fs.readFile(path.join(FIXTURES, n), 'latin1')),
  );
  const form = new FormData();
  for (let i = 0; i < FILES; i++) {
    form.append(
      'file',
      new Blob([Buffer.from(`REMARK 999 ${label} ${i}\n${bases[i % bases.length]}`, 'latin1')]),
      `${label}/${String(i).padStart(5, '0')}.pdb`,
    );
  }
  const started = Date.now();
  const response = await patient(`${baseUrl}/v1/projects/${project.id}/imports`, { method: 'POST', token, body: form });
  const accepted = (await response.json()) as any;
  if (response.status !== 202) throw new Error(`the import was refused: ${response.status} ${JSON.stringify(accepted)}`);
  const importId = accepted.import.id;
  const chaos = faults(started);
  let state = 'running';
  let statuses500 = 0;
  // Items ended (stored, rejected or failed) at each whole second: where the time went.
  const progress: string[] = [];
  while (Date.now() - started < TIMEOUT_MS) {
    const r = await patient(`${baseUrl}/v1/imports/${importId}?limit=1`, { token });
    if (r.status >= 500) statuses500++;
    const body = (await r.json()) as any;
    state = body.state;
    const second = Math.floor((Date.now() - started) / 1000);
    if (second >= progress.length) progress.push(...Array.from({ length: second + 1 - progress.length }, () => `${body.total - body.pending}`));
    if (state === 'completed' || state === 'failed') break;
    await sleep(250);
  }
  const seconds = (Date.now() - started) / 1000;
  await chaos;
  // The last fault (the Postgres kill) may be moments ago: ask until Postgres answers again.
  const row = await untilPostgresAnswers(async () => {
    const db = new pg.Client({ connectionString: databaseUrl });
    db.on('error', () => {});
    await db.connect();
    try {
      const { rows } = await db.query(
        `select count(*)::int as accepted,
                count(*) filter (where state = 'stored')::int as stored,
                count(*) filter (where state in ('rejected', 'skipped'))::int as rejected,
                count(*) filter (where state = 'failed')::int as failed,
                count(*) filter (where state in ('pending', 'processing'))::int as lost,
                (select count(*) from structure_versions v join structures s on s.id = v.structure_id where s.project_id = $2)::int as versions
           from import_items where batch_id = $1`,
        [importId, project.id],
      );
      return rows[0];
    } finally {
      await db.end().catch(() => {});
    }
  });
  return {
    state,
    seconds,
    accepted: row.accepted,
    stored: row.stored,
    rejected: row.rejected,
    failed: row.failed,
    lost: row.lost,
    duplicated: row.versions - row.stored,
    answers500: statuses500,
    endedBySecond: progress.join(' '),
  };
}

async function untilPostgresAnswers<T>(query: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await query();
    } catch (error) {
      if (Date.now() - started > 120_000) throw error;
      await sleep(500);
    }
  }
}

/**
 * Failover, measured: two worker processes up and idle; a large file uploaded; whichever process
 * takes its validate job (the job records its worker, `processedBy`, ending in :pid) is killed as soon
 * as the parse has begun, and the time until the other process starts the job again is taken. The
 * kill lands anywhere in the lock's renewal cycle, so rounds spread between about half the lock and
 * the lock plus one stalled check. Each round also reports how often the job was found stalled by
 * the time it finished (1: the kill; more would be a false stall of the survivor while it parsed).
 */
async function measureFailover(baseUrl: string, token: string, redisUrl: string, workerEnv: NodeJS.ProcessEnv) {
  const prefix = workerEnv.QUEUE_PREFIX ?? 'molvault';
  const { Queue } = await import('bullmq');
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const validate = new Queue('validate', { connection, prefix });
  const rounds: { takeoverSeconds: number | null; stalled: number | null; finished: boolean }[] = [];
  try {
    for (let round = 0; round < FAILOVER_ROUNDS; round++) {
      const project: any = await (
        await patient(`${baseUrl}/v1/projects`, {
          method: 'POST',
          token,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `failover ${round}` }),
        })
      ).json();
      const line = (i: number) =>
        `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA A${String((i % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13 + round) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`;
      const big = Array.from({ length: 600_000 }, (_, i) => line(i)).join('');
      const pair = [
        launch(['worker', '--queues', 'ingest,validate'], workerEnv, `failover-${round}-a`),
        launch(['worker', '--queues', 'validate'], workerEnv, `failover-${round}-b`),
      ];
      // Both up (each names its Redis connections after its pid) before the file arrives.
      const upSince = Date.now();
      for (;;) {
        const names = (await validate.getWorkers()).map((w) => String(w.rawname ?? ''));
        if (pair.every((child) => names.some((name) => name.endsWith(`:${child.pid}`)))) break;
        if (Date.now() - upSince > 300_000) throw new Error('the failover workers did not start');
        await sleep(100);
      }
      const form = new FormData();
      form.append('file', new Blob([big]), 'big.pdb');
      const accepted = (await (await patient(`${baseUrl}/v1/projects/${project.id}/structures`, { method: 'POST', token, body: form })).json()) as any;
      const jobId = `validate-${accepted.upload.id}`;
      let firstStart: number | undefined;
      let holder: ChildProcess | undefined;
      while (!holder) {
        const job = await validate.getJob(jobId);
        if (job?.processedOn && job.processedBy && (await job.getState()) === 'active') {
          firstStart = job.processedOn;
          holder = pair.find((child) => job.processedBy?.endsWith(`:${child.pid}`));
          if (!holder) throw new Error(`the validate job is held by ${job.processedBy}, not by a failover worker`);
        } else await sleep(10);
      }
      const killedAt = Date.now();
      await kill(holder);
      let takenOverAt: number | undefined;
      let finished = false;
      while (Date.now() - killedAt < 120_000) {
        const job = await validate.getJob(jobId);
        if (!takenOverAt && job?.processedOn && job.processedOn !== firstStart) takenOverAt = job.processedOn;
        if (takenOverAt && job && (await job.isCompleted())) {
          finished = true;
          break;
        }
        await sleep(50);
      }
      const stalled = await connection.hget(validate.toKey(jobId), 'stc');
      rounds.push({
        takeoverSeconds: takenOverAt ? Number(((takenOverAt - killedAt) / 1000).toFixed(1)) : null,
        stalled: stalled === null ? null : Number(stalled),
        finished,
      });
      for (const child of pair) await kill(child, 'SIGTERM');
    }
  } finally {
    await validate.close();
    connection.disconnect();
  }
  return {
    rounds,
  };
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
