import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../../src/config/index.js';

const run = promisify(execFile);
const SCRIPTS = path.resolve(import.meta.dirname, '../support');

/** S3 tests run unless S3_TESTS=off; then they are skipped and their titles say why. */
export const S3_TESTS_OFF = process.env.S3_TESTS === 'off';
export const S3_SKIP_REASON = 'skipped: S3_TESTS=off';

export interface S3Server {
  /** BLOB_STORE=s3 and the S3_* settings, as environment variables (bucket and prefix of this test's own). */
  env: Record<string, string>;
  /** The same as the config's `s3` object. */
  settings: Config['s3'];
  /** Kills the gateway only (monitor and OSD stay): requests fail until `startGateway`. */
  stopGateway(): Promise<void>;
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A throw-away Ceph RADOS Gateway of this test file's own (test/support/rgw-start.sh: one monitor,
 * one memstore OSD, the gateway on a free port of 127.0.0.1, and of each of `extraAddresses`). Fails loudly when it cannot start:
 * the S3 tests are then failures, not skips.
 */
export async function startS3Server(options: { extraAddresses?: string[] } = {}): Promise<S3Server> {
  // Short: Ceph's admin sockets live under it and Unix socket paths are limited to 107 bytes.
  const dir = path.join(os.tmpdir(), `mvrgw-${randomBytes(4).toString('hex')}`);
  let output: string;
  try {
    const env = { ...process.env, RGW_EXTRA_ADDRESSES: (options.extraAddresses ?? []).join(' ') };
    output = (await run(path.join(SCRIPTS, 'rgw-start.sh'), [dir], { timeout: 120_000, env })).stdout;
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    await run(path.join(SCRIPTS, 'rgw-stop.sh'), [dir]).catch(() => {});
    throw new Error(`The test S3 server (Ceph RGW) did not start; set S3_TESTS=off to skip the S3 tests.\n${stderr ?? error}`);
  }
  const vars = Object.fromEntries(
    output
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  const bucket = `molvault-test-${randomBytes(3).toString('hex')}`;
  const settings: Config['s3'] = {
    endpoint: vars.S3_ENDPOINT,
    region: vars.S3_REGION ?? 'us-east-1',
    bucket,
    prefix: 'mv/',
    accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
  };
  const env = {
    BLOB_STORE: 's3',
    S3_ENDPOINT: settings.endpoint as string,
    S3_REGION: settings.region,
    S3_BUCKET: bucket,
    S3_PREFIX: settings.prefix,
    S3_ACCESS_KEY_ID: settings.accessKeyId as string,
    S3_SECRET_ACCESS_KEY: settings.secretAccessKey as string,
    S3_FORCE_PATH_STYLE: 'true',
  };
  const conf = path.join(dir, 'ceph.conf');
  const pidFile = path.join(dir, 'run', 'client.rgw.a.pid');
  const gatewayPid = async () => Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim()) || undefined;
  const answering = async () => {
    try {
      await fetch(settings.endpoint as string, { signal: AbortSignal.timeout(1000) });
      return true;
    } catch {
      return false;
    }
  };
  return {
    env,
    settings,
    async stopGateway() {
      const pid = await gatewayPid();
      if (!pid) return;
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 100 && (await answering()); i++) await new Promise((r) => setTimeout(r, 50));
      await fs.rm(pidFile, { force: true });
    },
    async startGateway() {
      await new Promise<void>((resolve, reject) => {
        const child = spawn('radosgw', ['-c', conf, '-n', 'client.rgw.a'], { stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`radosgw exited with ${code}`))));
      });
      for (let i = 0; i < 300 && !(await answering()); i++) await new Promise((r) => setTimeout(r, 100));
    },
    async stop() {
      await run(path.join(SCRIPTS, 'rgw-stop.sh'), [dir]);
    },
  };
}
