import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** Starts a throw-away Ceph RGW for the S3 runs; its BLOB_STORE=s3 environment and how to stop it. */
export async function startRgw(): Promise<{ env: Record<string, string>; stop: () => Promise<void>; pids: () => Promise<number[]> }> {
  const dir = path.join(os.tmpdir(), `mvbench-rgw-${Date.now().toString(36)}`);
  const scripts = path.resolve(import.meta.dirname, '../../test/support');
  const { stdout }: { stdout: string } = await promisify(execFile)(path.join(scripts, 'rgw-start.sh'), [dir], { timeout: 120_000 });
  const vars = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  return {
    env: {
      BLOB_STORE: 's3',
      S3_ENDPOINT: vars.S3_ENDPOINT as string,
      S3_REGION: vars.S3_REGION as string,
      S3_BUCKET: 'molvault-bench',
      S3_ACCESS_KEY_ID: vars.S3_ACCESS_KEY_ID as string,
      S3_SECRET_ACCESS_KEY: vars.S3_SECRET_ACCESS_KEY as string,
      S3_FORCE_PATH_STYLE: 'true',
    },
    /** The cluster's processes (monitor, OSD, gateway), from their pid files, to meter their CPU. */
    pids: async () => {
      const run = path.join(dir, 'run');
      const names = await fs.readdir(run).catch(() => [] as string[]);
      const pids = await Promise.all(names.filter((name) => name.endsWith('.pid')).map((name) => fs.readFile(path.join(run, name), 'utf8').catch(() => '')));
      return pids.map((text) => Number(text.trim())).filter((pid) => Number.isInteger(pid) && pid > 0);
    },
    stop: async () => {
      await promisify(execFile)(path.join(scripts, 'rgw-stop.sh'), [dir]);
    },
  };
}
