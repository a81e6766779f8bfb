import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** Starts a throw-away Ceph RGW for the S3 runs; its BLOB_STORE=s3 environment and how to stop it. */
export async function startRgw(): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
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
    stop: async () => {
      await promisify(execFile)(path.join(scripts, 'rgw-stop.sh'), [dir]);
    },
  };
}
