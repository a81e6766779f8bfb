import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.js';
import { freePort } from '../src/runtime/net.js';
import { ensureDatabase, type PostgresHandle, startEmbeddedPostgres, withDatabase } from '../src/runtime/postgres.js';
import { type Client, client } from './helpers/factories.js';
import { createNamespaces, fetchFromNamespace, type Namespace, type Namespaces, namespaceOf, netnsUnavailable, spawnInNamespace } from './helpers/netns.js';
import { S3_SKIP_REASON, S3_TESTS_OFF, type S3Server, startS3Server } from './helpers/s3.js';
import { expectSliceServed } from './helpers/slice.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');
const listFiles = async (dir: string) => (await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());
const MARKER = 'this-host-only.txt';

const SKIP = S3_TESTS_OFF ? S3_SKIP_REASON : await netnsUnavailable();

/** `url` with its host replaced: the same service, reached at another of its addresses. */
function at(url: string, host: string): string {
  const parsed = new URL(url);
  parsed.hostname = host;
  return parsed.toString().replace(/\/$/, '');
}

async function redisAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/**
 * `molvault api` and `molvault worker` as on two hosts: each in a network namespace of its own
 * (`ip netns`, a veth pair to the host), each with a DATA_DIR of its own that the other cannot even
 * see (an empty tmpfs over it in its mount namespace). They meet only in Postgres, Redis and the S3
 * gateway, which listen on the host ends of the veths, and the client calls the API at its veth
 * address. The tests' shared Postgres and Redis listen on loopback only, which a namespace cannot
 * reach, so this file runs its own of each.
 */
describe.skipIf(SKIP /* skipped when S3_TESTS=off, or where network namespaces cannot be made (not root, no ip) */)(
  `API and worker in separate network namespaces over S3 (Ceph RGW; skipped when S3_TESTS=off or network namespaces cannot be made)${SKIP ? ` (${SKIP})` : ''}`,
  () => {
    const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
    const cleanups: (() => Promise<unknown>)[] = [];
    let nets: Namespaces;
    let apiNs: Namespace;
    let workerNs: Namespace;
    let apiDir: string;
    let workerDir: string;
    let apiPort: number;
    let apiChild: ChildProcess;
    let workerChild: ChildProcess;
    let api: Client;
    let s3Endpoint: (ns: Namespace) => string;

    const cleanUp = async () => {
      while (cleanups.length > 0) {
        const step = cleanups.pop() as () => Promise<unknown>;
        await step().catch((error) => process.stderr.write(`[netns test] cleanup: ${error}\n`));
      }
    };

    beforeAll(async () => {
      try {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-netns-'));
        // Postgres runs as "postgres" when we are root: it must be able to enter its directory.
        await fs.chmod(root, 0o755);
        cleanups.push(() => fs.rm(root, { recursive: true, force: true }));
        nets = await createNamespaces(['api', 'worker']);
        cleanups.push(() => nets.remove());
        apiNs = nets.byRole.api;
        workerNs = nets.byRole.worker;
        const hostAddresses = [apiNs.hostAddress, workerNs.hostAddress];

        const pg: PostgresHandle = await startEmbeddedPostgres(path.join(root, 'postgres'), await freePort(), log, {
          sharedBuffersMb: 128,
          extraListenAddresses: hostAddresses,
          clientNetworks: [nets.subnet],
        });
        cleanups.push(() => pg.stop());
        const databaseUrl = withDatabase(pg.serverUrl, 'molvault_netns');
        await ensureDatabase(databaseUrl);

        const redisPort = await freePort();
        const redis = spawn(
          'redis-server',
          ['--port', String(redisPort), '--bind', '127.0.0.1', ...hostAddresses, '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
          { stdio: 'ignore' },
        );
        const redisFailed = new Promise<Error>((resolve) => redis.once('error', resolve));
        cleanups.push(() => stopChild(redis));
        for (let i = 0; !(await redisAnswers('127.0.0.1', redisPort)); i++) {
          if (i >= 100 || redis.exitCode !== null)
            throw new Error(`the test's redis-server did not answer: ${await Promise.race([redisFailed, `exit code ${redis.exitCode}`])}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const redisUrl = `redis://127.0.0.1:${redisPort}`;

        const s3: S3Server = await startS3Server({ extraAddresses: hostAddresses });
        cleanups.push(() => s3.stop());
        s3Endpoint = (ns) => at(s3.env.S3_ENDPOINT, ns.hostAddress);

        apiDir = path.join(root, 'api');
        workerDir = path.join(root, 'worker');
        for (const dir of [apiDir, workerDir]) {
          await fs.mkdir(dir);
          await fs.writeFile(path.join(dir, MARKER), `${path.basename(dir)}\n`);
        }
        apiPort = await freePort();
        const base = {
          ...(process.env as Record<string, string>),
          ...s3.env,
          LOG_LEVEL: 'warn',
          RATE_LIMIT_PER_MINUTE: '0',
          QUEUE_PREFIX: `mvnetns-${randomBytes(3).toString('hex')}`,
        };
        // Set up from the host, over loopback.
        const onHost = { ...base, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, DATA_DIR: path.join(root, 'admin') };
        await run(process.execPath, [BIN, 'migrate'], { env: onHost });
        const created = await run(process.execPath, [BIN, 'user', 'create', '--email', `netns-${randomBytes(3).toString('hex')}@example.org`], { env: onHost });
        const { token } = JSON.parse(created.stdout);

        // Each role reaches the services at the host end of its own veth.
        const inside = (ns: Namespace, dataDir: string) => ({
          ...base,
          DATABASE_URL: at(databaseUrl, ns.hostAddress),
          REDIS_URL: at(redisUrl, ns.hostAddress),
          S3_ENDPOINT: s3Endpoint(ns),
          DATA_DIR: dataDir,
        });
        apiChild = spawnInNamespace(apiNs, [workerDir], process.execPath, [BIN, 'api'], {
          env: { ...inside(apiNs, apiDir), HOST: '0.0.0.0', PORT: String(apiPort) },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        cleanups.push(() => stopChild(apiChild));
        workerChild = spawnInNamespace(workerNs, [apiDir], process.execPath, [BIN, 'worker'], {
          env: inside(workerNs, workerDir),
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        cleanups.push(() => stopChild(workerChild));

        const url = `http://${apiNs.address}:${apiPort}`;
        for (let i = 0; i < 300; i++) {
          const ready = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
          if (ready?.ok) break;
          if (apiChild.exitCode !== null) throw new Error(`molvault api exited with ${apiChild.exitCode} before answering`);
          await new Promise((r) => setTimeout(r, 200));
        }
        api = client(url, token);
      } catch (error) {
        await cleanUp();
        throw error;
      }
    }, 180_000);
    afterAll(cleanUp, 120_000);

    it("each role runs in its own network namespace and reaches neither the other's loopback nor its DATA_DIR", async () => {
      expect(await namespaceOf(apiChild.pid as number)).toBe(apiNs.name);
      expect(await namespaceOf(workerChild.pid as number)).toBe(workerNs.name);

      // In the API's namespace its port answers on loopback: the checks below fail for want of a route, not of a server.
      expect(await fetchFromNamespace(apiNs, `http://127.0.0.1:${apiPort}/healthz`)).toBe('200');
      // From the worker's namespace the same address and port are its own loopback, where nothing listens.
      expect(await fetchFromNamespace(workerNs, `http://127.0.0.1:${apiPort}/healthz`)).toBe('ECONNREFUSED');
      // Nor is the API's veth address reachable from there: no route leads to another namespace.
      expect(await fetchFromNamespace(workerNs, `http://${apiNs.address}:${apiPort}/healthz`)).toBe('ENETUNREACH');
      // The worker does reach what it needs, at the host end of its own veth: the S3 gateway, for one.
      expect(Number(await fetchFromNamespace(workerNs, s3Endpoint(workerNs)))).toBeGreaterThanOrEqual(200);

      // Files: the host sees each DATA_DIR's marker; each process, through its own mount namespace
      // (/proc/<pid>/root), sees its own DATA_DIR and an empty directory where the other's is.
      expect(await fs.readdir(apiDir)).toContain(MARKER);
      expect(await fs.readdir(workerDir)).toContain(MARKER);
      const seenBy = (child: ChildProcess, dir: string) => fs.readdir(`/proc/${child.pid}/root${dir}`);
      expect(await seenBy(apiChild, apiDir)).toContain(MARKER);
      expect(await seenBy(apiChild, workerDir)).toEqual([]);
      expect(await seenBy(workerChild, workerDir)).toContain(MARKER);
      expect(await seenBy(workerChild, apiDir)).toEqual([]);
    });

    it('upload → stored → searchable → download → converted → exported, the client calling the API at its veth address; neither host keeps a blob or a staged file', async () => {
      await expectSliceServed(api, 'two namespaces', 'fenced');
      for (const dir of [apiDir, workerDir]) {
        expect(await listFiles(path.join(dir, 'blobs'))).toEqual([]);
        expect(await listFiles(path.join(dir, 'staging'))).toEqual([]);
      }
    }, 300_000);
  },
);
