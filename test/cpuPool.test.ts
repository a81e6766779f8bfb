/**
 * The parse pool's bounds, for real: a file that takes longer than the timeout is stopped, one
 * that needs more memory than the limit kills only its own thread, and the pool keeps serving.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuPool, TaskTimeoutError } from '../src/pool/cpuPool.js';

const atom = (i: number) =>
  `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA A${String((i % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`;

describe('the parse pool bounds time and memory per file', () => {
  let dir: string;
  let big: string;
  let huge: string;
  let small: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-pool-'));
    big = path.join(dir, 'big.pdb');
    huge = path.join(dir, 'huge.pdb');
    small = path.join(dir, 'small.pdb');
    await fs.writeFile(big, Array.from({ length: 400_000 }, (_, i) => atom(i)).join(''));
    const handle = await fs.open(huge, 'w');
    for (let chunk = 0; chunk < 12; chunk++) await handle.write(Array.from({ length: 100_000 }, (_, i) => atom(chunk * 100_000 + i)).join(''));
    await handle.close();
    await fs.writeFile(small, await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb')));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  it('stops a parse that outlasts the timeout with a clear error, and parses the next file', async () => {
    const pool = new CpuPool(1, 300, 4096);
    try {
      const error = await pool.parse({ path: big, format: 'pdb' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskTimeoutError);
      expect((error as Error).message).toMatch(/Reading the structure took longer than/);
      const pool2 = new CpuPool(1, 60_000, 4096);
      try {
        expect(await pool2.parse({ path: small, format: 'pdb' })).toMatchObject({ ok: true, summary: { atoms: 327 } });
      } finally {
        await pool2.close();
      }
    } finally {
      await pool.close();
    }
  });

  it('hands a task to a thread only when one is free, so its time limit counts its own run, not the wait behind others', async () => {
    const pool = new CpuPool(1, 60_000, 4096);
    const piscina = (pool as unknown as { pool: { queueSize: number } }).pool;
    try {
      const parses = Array.from({ length: 4 }, () => pool.parse({ path: big, format: 'pdb' }));
      // Three wait in molvault's own queue, none in piscina's: a timer started only when piscina got the task.
      await new Promise((r) => setTimeout(r, 50));
      expect(piscina.queueSize).toBe(0);
      for (const outcome of await Promise.all(parses)) expect(outcome).toMatchObject({ ok: true, summary: { atoms: 400_000 } });
    } finally {
      await pool.close();
    }
  });

  it('loses only the thread that ran out of memory, and the pool parses the next file', async () => {
    // 20 MB is enough to start a thread and read a normal file, not 1.2 million atoms (97 MB of text).
    const pool = new CpuPool(1, 60_000, 20);
    try {
      expect(await pool.parse({ path: small, format: 'pdb' })).toMatchObject({ ok: true });
      const error = await pool.parse({ path: huge, format: 'pdb' }).catch((e: unknown) => e);
      expect(String((error as { code?: string }).code ?? error)).toMatch(/ERR_WORKER_OUT_OF_MEMORY|out of memory/i);
      expect(await pool.parse({ path: small, format: 'pdb' })).toMatchObject({ ok: true, summary: { atoms: 327 } });
    } finally {
      await pool.close();
    }
  });

  // Linux keeps a nice value per thread (field 19 of /proc/<pid>/task/<tid>/stat).
  it.skipIf(process.platform !== 'linux' /* skipped when not on Linux: only Linux has per-thread nice values in /proc */)(
    'runs its threads at (at least) the nice value it is given, below the API (skipped off Linux, where /proc has no per-thread nice)',
    async () => {
      const threadNices = async () => {
        const nices: number[] = [];
        for (const tid of await fs.readdir('/proc/self/task')) {
          const stat = await fs.readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
          if (stat) nices.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
        }
        return nices;
      };
      const base = os.getPriority();
      const before = await threadNices();
      const pool = new CpuPool(1, 60_000, 512, 7);
      try {
        expect(await pool.parse({ path: small, format: 'pdb' })).toMatchObject({ ok: true });
        const after = await threadNices();
        expect(after.filter((n) => n === Math.max(base, 7)).length).toBeGreaterThan(before.filter((n) => n === Math.max(base, 7)).length);
      } finally {
        await pool.close();
      }
    },
  );
});
