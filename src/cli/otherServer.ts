import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config/index.js';

/**
 * Before a one-shot command (user create, token create, backup …) starts an embedded Postgres of
 * its own: whether another molvault's embedded Postgres already holds the configured port. Run
 * from another folder without the server's DATA_DIR, the command would otherwise create a second
 * database there and fail on the port. Returns the sentence to print, or undefined to go on.
 */
export async function otherServerProblem(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (config.databaseUrl) return undefined;
  const clusterDir = path.join(config.dataDir, 'postgres');
  const port = config.embeddedPostgresPort;
  const haveCluster = await fs
    .stat(path.join(clusterDir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
  if (!(await listening(port))) {
    if (haveCluster || env.DATA_DIR) return undefined;
    return (
      `DATA_DIR is not set and ${config.dataDir} holds no molvault database, so this command would create a new, empty one there. ` +
      'Set DATA_DIR to the data folder of your molvault server (or DATABASE_URL to its database).'
    );
  }
  const running = await dataDirectoryOn(port);
  if (running && haveCluster && (await sameDir(running, clusterDir))) return undefined; // the server of this DATA_DIR: shared
  const usage = 'Run this command with the DATA_DIR of that server (e.g. DATA_DIR=… molvault user create …), or set DATABASE_URL.';
  if (running) {
    const dataDir = path.basename(running) === 'postgres' ? path.dirname(running) : running;
    return (
      `A molvault is already running with its database on 127.0.0.1:${port}, kept in DATA_DIR=${dataDir}; this command was given DATA_DIR=${config.dataDir}. ` +
      `Run it again with DATA_DIR=${dataDir} (or set DATABASE_URL). Nothing was created in ${config.dataDir}.`
    );
  }
  return `Another server already listens on 127.0.0.1:${port}, the port molvault's embedded Postgres uses (EMBEDDED_POSTGRES_PORT). ${usage}`;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The data directory of the Postgres on the port, when it is a molvault embedded one (its credentials work). */
async function dataDirectoryOn(port: number): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: `postgres://postgres:molvault@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('show data_directory');
    return rows[0]?.data_directory;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

async function sameDir(a: string, b: string): Promise<boolean> {
  const real = (p: string) => fs.realpath(p).catch(() => path.resolve(p));
  return (await real(a)) === (await real(b));
}
