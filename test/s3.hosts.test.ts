import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../src/runtime/net.js';
import { type Client, client } from './helpers/factories.js';
import { importFiles, waitForImport } from './helpers/imports.js';
import { S3_TESTS_OFF, type S3Server, startS3Server } from './helpers/s3.js';
import { expectSliceServed } from './helpers/slice.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');
const listFiles = async (dir: string) => (await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());

/**
 * `molvault api` and `molvault worker` as two processes with DATA_DIRs of their own (no shared
 * disk), meeting only in Postgres, Redis and the S3 bucket, as on two hosts. In separate network
 * namespaces too, where the machine permits them: test/s3.netns.test.ts.
 */
describe.skipIf(S3_TESTS_OFF /* skipped when S3_TESTS=off */)(`API and worker on separate DATA_DIRs over S3 (Ceph RGW; skipped only when S3_TESTS=off)`, () => {
  let server: S3Server;
  let apiDir: string;
  let workerDir: string;
  let env: Record<string, string>;
  const children: ChildProcess[] = [];
  let api: Client;

  beforeAll(async () => {
    server = await startS3Server();
    apiDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-apihost-'));
    workerDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-workerhost-'));
    const port = await freePort();
    env = {
      ...(process.env as Record<string, string>),
      ...server.env,
      DATABASE_URL: inject('databaseUrl'),
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: `mvtest-${inject('runId')}-hosts-${randomBytes(3).toString('hex')}`,
      LOG_LEVEL: 'warn',
      PORT: String(port),
      RATE_LIMIT_PER_MINUTE: '0',
    };
    const start = (role: string, dataDir: string) => {
      const child = spawn(process.execPath, [BIN, role], { env: { ...env, DATA_DIR: dataDir }, stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      return child;
    };
    start('api', apiDir);
    start('worker', workerDir);
    const created = await run(process.execPath, [BIN, 'user', 'create', '--email', `hosts-${randomBytes(3).toString('hex')}@example.org`], {
      env: { ...env, DATA_DIR: apiDir },
    });
    const { token } = JSON.parse(created.stdout);
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 600; i++) {
      const ready = await fetch(`${url}/healthz`).catch(() => undefined);
      if (ready?.ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    api = client(url, token);
  }, 300_000);
  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    await server?.stop();
    for (const dir of [apiDir, workerDir]) if (dir) await fs.rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('upload → stored → searchable → download → converted → exported; bulk import; neither host keeps a blob or a staged file', async () => {
    const { projectId, bytes } = await expectSliceServed(api, 'two hosts', 'apart');

    const files = Array.from({ length: 5 }, (_, i) => ({ name: `c${i}.pdb`, content: Buffer.concat([Buffer.from(`REMARK 999 HOST ${i}\n`), bytes]) }));
    const accepted = await importFiles(api, projectId, files);
    expect(accepted.status).toBe(202);
    expect(await waitForImport(api, accepted.body.import.id, 240_000)).toMatchObject({ state: 'completed', succeeded: 5 });

    for (const dir of [apiDir, workerDir]) {
      expect(await listFiles(path.join(dir, 'blobs'))).toEqual([]);
      expect(await listFiles(path.join(dir, 'staging'))).toEqual([]);
    }
  }, 600_000);
});
