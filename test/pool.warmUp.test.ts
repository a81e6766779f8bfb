/**
 * The made-up structures a warm parse thread reads as it starts (pool/warmUp.ts) must be read as
 * sound files, through the same readers real files take: a warm-up refused early would optimise
 * nothing.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStructureBytes } from '../src/formats/parse.js';
import { CpuPool } from '../src/pool/cpuPool.js';
import { warmUpInputs, warmUpReaders } from '../src/pool/warmUp.js';

describe('parse thread warm-up', () => {
  it('reads the made-up PDB and mmCIF structures whole, with the same counts in both formats', async () => {
    const outcomes = await Promise.all(warmUpInputs().map((input) => parseStructureBytes(input.bytes, input.format)));
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ ok: true, summary: { atoms: 3038, chains: 2, residues: 675, waters: 75, resolution: 1.5, method: 'X-RAY DIFFRACTION' } });
      if (outcome.ok) expect(outcome.report.warnings).toEqual([]);
    }
    expect(await warmUpReaders(1)).toBe(true);
  });

  it('a warm pool has every thread started, and parses as a pool started on demand does', async () => {
    const pool = new CpuPool(2, 60_000, 2048, 0, 0, true);
    try {
      await pool.warmed;
      expect(pool.threads).toBe(2);
      const [pdb] = warmUpInputs();
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-warm-'));
      try {
        const file = path.join(dir, 'made-up.pdb');
        await fs.writeFile(file, pdb.bytes);
        expect(await pool.parse({ path: file, format: 'pdb' })).toMatchObject({ ok: true, summary: { atoms: 3038 } });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    } finally {
      await pool.close();
    }
  });
});
