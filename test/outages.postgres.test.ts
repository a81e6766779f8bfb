import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../src/runtime/net.js';
import { client } from './helpers/factories.js';
import { importFiles, waitForImport } from './helpers/imports.js';
import { workerAwaitingPostgres } from './helpers/processes.js';

/**
 * A whole molvault (`molvault start`) with an embedded Postgres of its own, on its own DATA_DIR and
 * port; the test kills that Postgres with SIGKILL in the middle of an import.
 */
describe('the embedded Postgres killed in the middle of an import', () => {
  let child: ChildProcess;
  let dataDir: string;
  let baseUrl: string;
  let token: string;
  let pgPort: number;
  let output = '';

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-pgkill-'));
    // As root the cluster runs as the postgres user, which must be able to enter DATA_DIR.
    await fs.chmod(dataDir, 0o755);
    pgPort = await freePort();
    const apiPort = await freePort();
    baseUrl = `http://127.0.0.1:${apiPort}`;
    const env: Record<string, string | undefined> = {
      ...process.env,
      DATA_DIR: dataDir,
      EMBEDDED_POSTGRES_PORT: String(pgPort),
      EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: '32',
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: `mvtest-pgkill-${randomBytes(3).toString('hex')}`,
      PARSE_THREADS: '1',
      RATE_LIMIT_PER_MINUTE: '0',
      BACKUP_SCHEDULE: 'off',
      LOG_LEVEL: 'warn',
      RECONCILE_EVERY_MS: '2000',
      RECONCILE_AFTER_MS: '2000',
      WATCHDOG_EVERY_MS: '1000',
      INFRA_RETRY_BASE_DELAY_MS: '250',
      INFRA_RETRY_MAX_DELAY_MS: '2000',
    };
    delete env.DATABASE_URL;
    delete env.TEST_DATABASE_URL;
    child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../bin/molvault.js'), 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk) => {
      output += chunk.toString();
    });
    // The first start creates an administrator and prints its token once.
    const started = Date.now();
    while (!/shown only this once:\s+(\S+)/.test(output)) {
      if (Date.now() - started > 240_000 || child.exitCode !== null) throw new Error(`molvault start did not come up:\n${output.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    token = /shown only this once:\s+(\S+)/.exec(output)?.[1] as string;
  }, 300_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    // A postmaster the supervisor started after the kill is a child of that process: make sure it is gone.
    const pid = Number((await fs.readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await fs.rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('answers 503 (never 500) while it is down, restarts it by itself, and finishes every accepted item once', async () => {
    const api = client(baseUrl, token);
    const projectId = (await api.post('/v1/projects', { name: 'outage' })).body.id;
    const bases = await Promise.all(
      ['ngl_1crn.pdb', 'chemfiles_insertion-code.pdb', 'ngl_multi-models-example.pdb'].map((name) =>
        fs.readFile(path.join(import.meta.dirname, 'fixtures', name), 'latin1'),
      ),
    );
    const total = 150;
    const files = Array.from({ length: total }, (_, i) => ({
      name: `outage/${String(i).padStart(4, '0')}.pdb`,
      content: Buffer.from(`REMARK 999 OUTAGE COPY ${i}\n${bases[i % bases.length]}`, 'latin1'),
    }));
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const importId = accepted.body.import.id;
    await expect.poll(async () => (await api.get(`/v1/imports/${importId}?limit=1`)).body.succeeded, { timeout: 600_000, interval: 200 }).toBeGreaterThan(0);

    // kill -9 the postmaster, as an operator's bad day would.
    const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
    const killedPid = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0]);
    expect(killedPid).toBeGreaterThan(0);
    process.kill(killedPid, 'SIGKILL');
    // From here on the process writes only its log (the welcome text is behind us): JSON, line by line.
    const outputAtKill = output.length;

    // During the outage: the API answers 503 with Retry-After and a sentence, never 500; /readyz names Postgres.
    const statuses: number[] = [];
    let unavailable: { retryAfter: string | null; body: any } | undefined;
    let readyDown: any;
    const deadline = Date.now() + 120_000;
    let back = false;
    while (Date.now() < deadline) {
      const response = await api.get(`/v1/imports/${importId}?limit=1`);
      statuses.push(response.status);
      if (response.status === 503 && !unavailable) unavailable = { retryAfter: response.headers.get('retry-after'), body: response.body };
      const ready = await fetch(`${baseUrl}/readyz`);
      const readyBody = await ready.json();
      if (ready.status === 503 && !readyDown) readyDown = readyBody;
      if (ready.status === 200 && statuses.includes(503)) {
        back = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(statuses).not.toContain(500);
    expect(statuses).toContain(503);
    expect(unavailable?.retryAfter).toMatch(/^\d+$/);
    expect(unavailable?.body.error).toMatchObject({ code: 'service_unavailable', details: { unavailable: 'postgres' } });
    expect(unavailable?.body.error.message).toMatch(/database is unreachable/);
    expect(readyDown).toMatchObject({ ok: false });
    expect(readyDown.unavailable).toContain('postgres');
    expect(back, 'Postgres came back by itself').toBe(true);
    // A new postmaster, started by molvault's supervisor (no process was restarted by the test).
    const newPid = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0]);
    expect(newPid).not.toBe(killedPid);
    expect(child.exitCode).toBeNull();

    const done = await waitForImport(api, importId, 400_000);
    expect(done).toMatchObject({ state: 'completed', total, pending: 0 });
    for (const item of done.items) expect(['stored', 'rejected']).toContain(item.state);
    const stored = done.items.filter((i: any) => i.state === 'stored').length;
    expect(stored).toBe(total);

    // Exactly once: one structure with one version per stored item.
    const db = new pg.Client({ connectionString: `postgres://postgres:molvault@127.0.0.1:${pgPort}/molvault` });
    await db.connect();
    try {
      const { rows } = await db.query(
        `select (select count(*) from structures where project_id = $1)::int as structures,
                (select count(*) from structure_versions v join structures s on s.id = v.structure_id where s.project_id = $1)::int as versions,
                (select count(*) from uploads where project_id = $1 and state = 'failed')::int as failed`,
        [projectId],
      );
      expect(rows[0]).toEqual({ structures: stored, versions: stored, failed: 0 });
    } finally {
      await db.end();
    }
    const linesAfterKill = output.slice(outputAtKill).split('\n');
    // A line the kill cut in two was begun before it.
    if (outputAtKill > 0 && output[outputAtKill - 1] !== '\n') linesAfterKill.shift();
    const notJson = linesAfterKill
      .filter((line) => line.trim() !== '')
      .filter((line) => {
        try {
          return typeof JSON.parse(line) !== 'object';
        } catch {
          return true;
        }
      });
    expect(notJson).toEqual([]);
  }, 900_000);
});

/**
 * A worker (re)started while its Postgres is away (an embedded one restarting, say) waits for it
 * rather than exiting: here the run's database is reached through a port nothing listens on until
 * the test opens a relay to it.
 */
describe('a worker started while its Postgres does not answer', () => {
  it('waits for it, and starts once it answers', async () => {
    const { worker, openRelay, stop } = await workerAwaitingPostgres('pgwait');
    try {
      // It keeps trying (a second attempt fails too) and does not exit.
      await expect.poll(() => worker.logged(/Postgres does not answer yet/).length, { timeout: 120_000, interval: 100 }).toBeGreaterThan(1);
      expect(worker.child.exitCode).toBeNull();
      await openRelay();
      await worker.waitForLog(/workers started/, 180_000);
      expect(worker.notJson()).toEqual([]);
    } finally {
      await stop();
    }
  }, 300_000);
});
