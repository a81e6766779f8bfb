/**
 * Chaos benchmark: an operator's bad day, against real processes. A molvault of its own (a
 * `molvault api` process that owns an embedded Postgres on a scratch DATA_DIR, a redis-server of
 * its own, two `molvault worker` processes) imports N files (default 1,000) twice:
 *  1. without faults, timed;
 *  2. while worker processes are killed (SIGKILL, then started again) --kills times (default 10),
 *     Redis is flushed once (FLUSHALL) and the embedded Postgres is killed once (SIGKILL of the
 *     postmaster; the api process restarts it by itself).
 * It prints accepted, stored, rejected, failed, lost (accepted and never ended), duplicated (stored
 * versions beyond one per stored item) and the time to finish, against the fault-free run.
 * Goal (issue 22): 0 lost, 0 duplicated, 0 failed, within 2x the fault-free time.
 *
 * Then it measures failover: a worker process killed while it parses a large file, and the time
 * until another worker process has taken the job over (WORKER_LOCK_MS and WORKER_STALLED_INTERVAL_MS
 * at their defaults unless set in the environment).
 *
 *   npm run bench:chaos -- [--files 1000] [--kills 10] [--timeout 1800]
 *
 * Reconcile runs every RECONCILE_EVERY_MS and looks at work untouched for RECONCILE_AFTER_MS; this
 * benchmark sets both to 10 s (unless set in the environment) and prints them, since recovery from
 * the FLUSHALL waits for them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from '../src/runtime/net.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO_ROOT, 'bin/molvault.js');
const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { values } = parseArgs({
  options: { files: { type: 'string', default: '1000' }, kills: { type: 'string', default: '10' }, timeout: { type: 'string', default: '1800' } },
});
const FILES = Number(values.files);
const KILLS = Number(values.kills);
const TIMEOUT_MS = Number(values.timeout) * 1000;

const children = new Set<ChildProcess>();
function launch(args: string[], env: NodeJS.ProcessEnv, label: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (chunk) => {
    if (process.env.CHAOS_VERBOSE) process.stderr.write(`[${label}] ${chunk}`);
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

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

    const calm = await runImport(baseUrl, token, databaseUrl, 'calm', async () => {});
    console.log(`fault-free: ${JSON.stringify(calm)}`);
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
    console.log(`faults: ${faults.join('; ')}`);
    console.log(`with faults: ${JSON.stringify(storm)}`);
    console.log(
      `chaos result: accepted ${storm.accepted}, stored ${storm.stored}, rejected ${storm.rejected}, failed ${storm.failed}, lost ${storm.lost}, ` +
        `duplicated ${storm.duplicated}; ${storm.seconds.toFixed(1)} s vs ${calm.seconds.toFixed(1)} s without faults (${(storm.seconds / calm.seconds).toFixed(2)}x)`,
    );
    for (const worker of workers) await kill(worker);
    console.log(`failover: ${JSON.stringify(await measureFailover(baseUrl, token, redisUrl, workerEnv))}`);
  } finally {
    await cleanup();
  }
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
  while (Date.now() - started < TIMEOUT_MS) {
    const r = await patient(`${baseUrl}/v1/imports/${importId}?limit=1`, { token });
    if (r.status >= 500) statuses500++;
    const body = (await r.json()) as any;
    state = body.state;
    if (state === 'completed' || state === 'failed') break;
    await sleep(250);
  }
  const seconds = (Date.now() - started) / 1000;
  await chaos;
  const db = new pg.Client({ connectionString: databaseUrl });
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
    const row = rows[0];
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
    };
  } finally {
    await db.end();
  }
}

/** A worker killed while it parses a large file; the time until another worker has the job. */
async function measureFailover(baseUrl: string, token: string, redisUrl: string, workerEnv: NodeJS.ProcessEnv) {
  const prefix = workerEnv.QUEUE_PREFIX ?? 'molvault';
  const { Queue } = await import('bullmq');
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const validate = new Queue('validate', { connection, prefix });
  const results: number[] = [];
  try {
    for (let round = 0; round < 3; round++) {
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
      const first = launch(['worker', '--queues', 'ingest,validate'], workerEnv, 'failover-first');
      await sleep(3000);
      const form = new FormData();
      form.append('file', new Blob([big]), 'big.pdb');
      const accepted = (await (await patient(`${baseUrl}/v1/projects/${project.id}/structures`, { method: 'POST', token, body: form })).json()) as any;
      const jobId = `validate-${accepted.upload.id}`;
      let firstStart: number | undefined;
      while (!firstStart) {
        const job = await validate.getJob(jobId);
        if (job && (await job.getState()) === 'active') firstStart = job.processedOn;
        else await sleep(20);
      }
      // A second worker, up and idle, before the first dies.
      const second = launch(['worker', '--queues', 'validate'], workerEnv, 'failover-second');
      await sleep(8000);
      const killedAt = Date.now();
      await kill(first);
      let takenOverAt: number | undefined;
      while (!takenOverAt && Date.now() - killedAt < 120_000) {
        const job = await validate.getJob(jobId);
        if (job?.processedOn && job.processedOn !== firstStart) takenOverAt = job.processedOn;
        else if (job && (await job.getState()) === 'completed' && job.processedOn !== firstStart) takenOverAt = job.processedOn;
        else await sleep(50);
      }
      results.push(takenOverAt ? (takenOverAt - killedAt) / 1000 : Number.NaN);
      await kill(second, 'SIGTERM');
    }
  } finally {
    await validate.close();
    connection.disconnect();
  }
  return {
    lockMs: Number(process.env.WORKER_LOCK_MS ?? 10_000),
    stalledIntervalMs: Number(process.env.WORKER_STALLED_INTERVAL_MS ?? 5_000),
    takeoverSeconds: results.map((s) => Number(s.toFixed(1))),
  };
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
