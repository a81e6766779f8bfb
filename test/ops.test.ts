import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema, loadConfig, QUEUE_NAMES } from '../src/config/index.js';

const run = promisify(execFile);
const OPS = path.resolve('ops');
const hasSystemdAnalyze = await run('systemd-analyze', ['--version']).then(
  () => true,
  () => false,
);

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  image?: string;
}

const compose = parse(await readFile(path.join(OPS, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const services = Object.entries(compose.services);
const molvaultServices = services.filter(([, s]) => s.command?.includes('bin/molvault.js'));

describe('ops/compose.yaml: a multi-host-shaped deployment', () => {
  it('runs two API processes and two worker groups that together serve every queue', () => {
    const apis = molvaultServices.filter(([, s]) => s.command?.at(-1) === 'api');
    const workers = molvaultServices.filter(([, s]) => s.command?.includes('worker'));
    expect(apis.length).toBeGreaterThanOrEqual(2);
    expect(workers.length).toBeGreaterThanOrEqual(2);
    const served = workers.flatMap(([, s]) => (s.command?.[(s.command?.indexOf('--queues') ?? -1) + 1] ?? '').split(','));
    expect(new Set(served)).toEqual(new Set(QUEUE_NAMES));
  });

  it('has Postgres, Redis, Typesense and an S3 server beside molvault', () => {
    const images = services.map(([, s]) => s.image ?? '');
    for (const image of ['postgres', 'redis', 'typesense', 'minio']) expect(images.some((i) => i.includes(image))).toBe(true);
  });

  it('configures every molvault process with settings molvault knows and accepts', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const [name, service] of molvaultServices) {
      const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+\}/g, 'x')]));
      for (const key of Object.keys(env)) expect(known.has(key), `${name}: ${key} is not a molvault setting`).toBe(true);
      // Parses as molvault would parse it (per-queue concurrency included).
      const config = loadConfig({ ...env, DATA_DIR: os.tmpdir() });
      if (env.QUEUE_CONCURRENCY) expect(Object.values(config.concurrency).every((n) => n >= 1)).toBe(true);
      // No molvault process shares a disk with another: each keeps only scratch under its own DATA_DIR, blobs in S3.
      expect(env.BLOB_STORE).toBe('s3');
    }
  });
});

describe('ops/ service settings', () => {
  it('Redis keeps every BullMQ key (noeviction) and its data (append-only file)', async () => {
    const conf = await readFile(path.join(OPS, 'redis/molvault.conf'), 'utf8');
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    expect(conf).toMatch(/^appendonly yes$/m);
  });

  it('Postgres keeps durability on and sizes memory for search', async () => {
    const conf = await readFile(path.join(OPS, 'postgres/molvault.conf'), 'utf8');
    for (const line of [/^fsync = on/m, /^synchronous_commit = on/m, /^shared_buffers = \d+[MG]B/m]) expect(conf).toMatch(line);
  });
});

describe('ops/systemd unit templates', () => {
  const scratch: string[] = [];
  afterAll(async () => {
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  });

  it.skipIf(!hasSystemdAnalyze /* skipped when systemd-analyze is not installed */)(
    'pass systemd-analyze verify (skipped only where systemd-analyze is not installed)',
    async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'molvault-units-'));
      scratch.push(dir);
      const templates = (await readdir(path.join(OPS, 'systemd'))).filter((f) => f.endsWith('@.service'));
      expect(templates.length).toBeGreaterThanOrEqual(2);
      const instances: string[] = [];
      for (const template of templates) {
        const instance = path.join(dir, template.replace('@.service', '@check.service'));
        await copyFile(path.join(OPS, 'systemd', template), instance);
        instances.push(instance);
      }
      const result = await run('systemd-analyze', ['verify', '--man=no', ...instances]).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(result.stderr.split('\n').filter((l) => /molvault-.*service:/.test(l))).toEqual([]);
      expect(result.code).toBe(0);
    },
  );
});

describe('ops/runbooks', () => {
  it('cover backup and restore, adding workers, moving blobs to S3, rotating secrets and upgrading', async () => {
    const books = await readdir(path.join(OPS, 'runbooks'));
    expect(books.sort()).toEqual(['adding-workers.md', 'backup-and-restore.md', 'moving-blobs-to-s3.md', 'rotating-secrets.md', 'upgrading.md']);
  });

  it('name only molvault commands that exist', async () => {
    const { stdout } = await run(process.execPath, ['bin/molvault.js', 'help']);
    const usage = stdout;
    for (const book of await readdir(path.join(OPS, 'runbooks'))) {
      const text = await readFile(path.join(OPS, 'runbooks', book), 'utf8');
      for (const match of text.matchAll(/(?:`|^\s+)molvault ([a-z]+)(?: ([a-z]+))?/gm)) {
        const [, command, sub] = match;
        expect(usage, `${book}: molvault ${command}`).toContain(`molvault ${command}`);
        if (sub && /^(create|list|verify|restore|migrate)$/.test(sub))
          expect(usage, `${book}: molvault ${command} ${sub}`).toContain(`molvault ${command} ${sub}`);
      }
    }
  });
});

const HUGE_PAGES = 'GLIBC_TUNABLES=glibc.malloc.hugetlb=1';
const transparentHugePages = await readFile('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').then(
  (modes) => /\[(always|madvise)\]/.test(modes),
  () => false,
);

describe('huge pages for large allocations', () => {
  it('are asked of glibc by both unit templates and the image', async () => {
    for (const unit of ['molvault-api@.service', 'molvault-worker@.service']) {
      expect(await readFile(path.join(OPS, 'systemd', unit), 'utf8')).toContain(`Environment=${HUGE_PAGES}\n`);
    }
    expect(await readFile(path.join(OPS, 'Dockerfile'), 'utf8')).toContain(`ENV ${HUGE_PAGES}\n`);
  });

  it.skipIf(!transparentHugePages /* skipped when the kernel offers no transparent huge pages */)(
    'back a Node process’s large buffer when the setting is given (skipped when the kernel offers no transparent huge pages)',
    async () => {
      const script =
        "const b = Buffer.alloc(64 * 1024 * 1024, 1); const m = require('fs').readFileSync('/proc/self/smaps_rollup', 'utf8').match(/AnonHugePages:\\s+(\\d+)/); console.log(m ? m[1] : 0, b[1])";
      const { stdout } = await run(process.execPath, ['-e', script], { env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' } });
      const [hugeKb] = stdout.trim().split(' ').map(Number);
      // Most of the 64 MB buffer lies in 2 MB pages (its unaligned ends do not).
      expect(hugeKb).toBeGreaterThanOrEqual(32 * 1024);
    },
  );
});
