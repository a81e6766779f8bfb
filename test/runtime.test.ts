import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.js';
import { freePort } from '../src/runtime/net.js';
import { defaultSharedBuffersMb, startEmbeddedPostgres } from '../src/runtime/postgres.js';
import { client, userFactory } from './helpers/factories.js';
import { startStack } from './helpers/stack.js';

const log = createLogger('silent');

describe('runtime', () => {
  // Only root hands the cluster to the "postgres" user; other users run it themselves.
  it.skipIf(process.getuid?.() !== 0)('as root, explains a DATA_DIR the postgres user cannot enter (skipped unless root)', async () => {
    const hidden = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-private-'));
    await fs.chmod(hidden, 0o700);
    try {
      await expect(startEmbeddedPostgres(path.join(hidden, 'postgres'), 54999, log)).rejects.toThrow(/cannot enter .*molvault-private-.*set DATABASE_URL/);
    } finally {
      await fs.rm(hidden, { recursive: true, force: true });
    }
  });

  it('shares an embedded Postgres that another molvault process already runs on the same data directory', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-shared-pg-'));
    await fs.chmod(parent, 0o755);
    const dir = path.join(parent, 'postgres');
    const first = await startEmbeddedPostgres(dir, await freePort(), log, { sharedBuffersMb: 96 });
    try {
      const second = await startEmbeddedPostgres(dir, await freePort(), log);
      expect(second.serverUrl).toBe(first.serverUrl);
      await second.stop(); // a no-op: the server belongs to the first
      const client = new pg.Client({ connectionString: first.serverUrl });
      await client.connect();
      expect((await client.query('select 1 as one')).rows[0].one).toBe(1);
      // Started with the page cache it was given.
      expect((await client.query('show shared_buffers')).rows[0].shared_buffers).toBe('96MB');
      await client.end();
    } finally {
      await first.stop();
      await fs.rm(parent, { recursive: true, force: true });
    }
  });

  it('gives an embedded Postgres a quarter of the memory for its page cache, within 128 MB and 8 GB', () => {
    const GiB = 2 ** 30;
    expect(defaultSharedBuffersMb(24 * GiB)).toBe(6144);
    expect(defaultSharedBuffersMb(256 * GiB)).toBe(8192);
    expect(defaultSharedBuffersMb(256 * 2 ** 20)).toBe(128);
  });

  it('stops the API within its grace period while a client keeps polling on a keep-alive connection', async () => {
    const stack = await startStack({ workers: false });
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const project = (await api.post('/v1/projects', { name: 'polled' })).body.id;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let polling = true;
    let answered = 0;
    const poller = (async () => {
      while (polling) {
        await new Promise<void>((resolve) => {
          const request = http.get(`${stack.url}/v1/projects/${project}`, { agent, headers: { authorization: `Bearer ${user.token}` } }, (response) => {
            response.resume();
            response.on('end', () => {
              answered++;
              resolve();
            });
          });
          request.on('error', () => resolve());
        });
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    // Without the grace period this await never returns (the test would time out).
    await stack.stop();
    polling = false;
    await poller;
    agent.destroy();
    expect(answered).toBeGreaterThan(0);
    await expect(fetch(`${stack.url}/healthz`)).rejects.toThrow();
  });
});
