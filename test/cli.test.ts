import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { client } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');

/** Runs the real `molvault` command against this run's database. */
async function molvault(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'warn', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the molvault command', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: false });
  });
  afterAll(() => stack?.stop());

  it('creates a user and prints a token that works, once', async () => {
    const email = `cli-${randomBytes(3).toString('hex')}@example.org`;
    const created = await molvault(['user', 'create', '--email', email, '--admin', '--quota', '5GB']);
    expect(created.code).toBe(0);
    const output = JSON.parse(created.stdout);
    expect(output.user).toMatchObject({ email, role: 'admin', quotaBytes: 5e9 });
    expect(output.token).toMatch(/^mv_[A-Za-z0-9_-]{40,}$/);
    expect((await client(stack.url, output.token).get('/v1/projects')).status).toBe(200);

    const again = await molvault(['user', 'create', '--email', email]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists already');

    const token = await molvault(['token', 'create', '--email', email, '--name', 'laptop', '--expires', '30d']);
    expect(token.code).toBe(0);
    const issued = JSON.parse(token.stdout);
    expect(issued.token).not.toBe(output.token);
    expect(new Date(issued.expiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 86400_000);
    expect((await client(stack.url, issued.token).get('/v1/projects')).status).toBe(200);

    // Each is in the audit log as done at the command line, by no user.
    const recorded = await stack.ctx.orm.em
      .fork()
      .execute<{ action: string; target_id: string; actor_user_id: string | null; via: string; user_agent: string }[]>(
        `select action, target_id, actor_user_id, details->>'via' as via, user_agent from audit_events
         where target_id in (?, ?, ?) order by created_at, action`,
        [output.user.id, issued.id, output.user.id],
      );
    expect(recorded.map((r) => [r.action, r.target_id])).toEqual([
      ['admin.user.create', output.user.id],
      ['token.create', issued.id],
    ]);
    for (const row of recorded)
      expect(row).toMatchObject({ actor_user_id: null, via: 'command line', user_agent: expect.stringContaining('molvault command line') });
  });

  it('explains bad usage and bad configuration instead of failing obscurely', async () => {
    const usage = await molvault(['frobnicate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown command: frobnicate');
    expect(usage.stderr).toContain('molvault start');
    const config = await molvault(['migrate'], { PORT: 'many', MAX_UPLOAD_BYTES: 'huge' });
    expect(config.code).toBe(2);
    expect(config.stderr).toContain('configuration is wrong');
    expect(config.stderr).toContain('PORT');
    expect(config.stderr).toContain('MAX_UPLOAD_BYTES');
  });

  it('migrates an up-to-date database without changes, and says why nothing was applied', async () => {
    const result = await molvault(['migrate']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      applied: [],
      appliedInAll: expect.any(Number),
      message: expect.stringMatching(/^already up to date: \d+ migrations applied, none pending/),
    });
    expect(report.appliedInAll).toBeGreaterThan(10);
    expect(result.stderr).toContain('already up to date');
  });

  it.each([
    ['user', 'create', '--email', 'nobody@example.org'],
    ['token', 'create', '--email', 'nobody@example.org'],
    ['backup', 'create'],
  ])(
    'refuses "%s %s" pointed at no DATA_DIR beside a running molvault, names the DATA_DIR to use, and creates nothing',
    async (...args) => {
      const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-elsewhere-'));
      // This run's Postgres stands in for a running molvault's embedded one, on the port molvault would take.
      const port = new URL(inject('databaseUrl')).port || '5432';
      const env = { ...process.env, LOG_LEVEL: 'warn', EMBEDDED_POSTGRES_PORT: port } as Record<string, string>;
      delete env.DATABASE_URL;
      delete env.DATA_DIR;
      const beside = await runIn(folder, args, env);
      expect(beside.code).toBe(2);
      expect(beside.stderr).toMatch(/A molvault is already running with its database on 127\.0\.0\.1:\d+, kept in DATA_DIR=\S+/);
      expect(beside.stderr).toContain('Run it again with DATA_DIR=');
      // With nothing on the port and no DATA_DIR, no new empty database is made in the current folder either.
      const alone = await runIn(folder, args, { ...env, EMBEDDED_POSTGRES_PORT: String(await freePort()) });
      expect(alone.code).toBe(2);
      expect(alone.stderr).toContain('DATA_DIR is not set');
      expect(await fs.readdir(folder)).toEqual([]);
      await fs.rm(folder, { recursive: true, force: true });
    },
    180_000,
  );
});

async function runIn(cwd: string, args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd, env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
