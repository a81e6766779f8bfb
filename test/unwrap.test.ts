/**
 * The ingest task's unwrapping, called directly (the pool runs the same function): multi-member
 * gzip, bzip2, and decompression bombs refused with 413 leaving no temp file behind, on both the
 * in-memory path (small uploads) and the streaming path; a large plain file hashed once and
 * linked, not copied, and refused when the staged bytes no longer match the receipt's hash.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingest } from '../src/pool/tasks.js';

const hasBzip2 = (() => {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const xyzFrame = (n: number) => `3\nframe ${n}\nO 0.0 0.0 ${n}.0\nH 0.757 0.586 ${n}.0\nH -0.757 0.586 ${n}.0\n`;

describe('unwrapping uploads', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-unwrap-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  const run = async (name: string, bytes: Uint8Array, maxExpandedBytes = 1024 ** 3) => {
    const stagingFile = path.join(dir, name);
    const tempFile = path.join(dir, `${name}.out`);
    await fs.writeFile(stagingFile, bytes);
    const result = await ingest({ stagingFile, tempFile, maxExpandedBytes, maxExpansionRatio: 200 });
    const left = await fs
      .access(tempFile)
      .then(() => true)
      .catch(() => false);
    return { result, tempFile, left };
  };

  it('takes a large plain file as it lies: one hash, the temp file a second name for the staged one', async () => {
    const plain = Buffer.from(Array.from({ length: 400_000 }, (_, i) => xyzFrame(i)).join(''));
    expect(plain.length).toBeGreaterThan(4 * 1024 * 1024);
    const sha256 = createHash('sha256').update(plain).digest('hex');
    const stagingFile = path.join(dir, 'large-plain.xyz');
    const tempFile = path.join(dir, 'large-plain.out');
    await fs.writeFile(stagingFile, plain);
    const result = await ingest({ stagingFile, tempFile, maxExpandedBytes: 1024 ** 3, maxExpansionRatio: 200, expectedRawSha256: sha256 });
    expect(result).toMatchObject({ ok: true, sha256, size: plain.length, compressedSize: plain.length, detected: 'xyz' });
    expect(result.ok && result.compression).toBeFalsy();
    expect((await fs.stat(tempFile)).ino).toBe((await fs.stat(stagingFile)).ino);
    expect((await fs.readFile(tempFile)).equals(plain)).toBe(true);

    const corrupted = await ingest({
      stagingFile,
      tempFile: path.join(dir, 'large-plain-2.out'),
      maxExpandedBytes: 1024 ** 3,
      maxExpansionRatio: 200,
      expectedRawSha256: '0'.repeat(64),
    });
    expect(corrupted).toMatchObject({ ok: false, status: 500, code: 'staging_corrupted' });
    await expect(fs.access(path.join(dir, 'large-plain-2.out'))).rejects.toThrow();
  });

  it('reads every member of a multi-member gzip stream, small or large', async () => {
    for (const [name, frames] of [
      ['small.xyz.gz', 3],
      ['large.xyz.gz', 120_000],
    ] as const) {
      const members = Array.from({ length: 3 }, (_, m) =>
        gzipSync(
          Array.from({ length: frames }, (_, i) => xyzFrame(m * frames + i)).join(''),
          { level: 0 }, // stored blocks: the large case must exceed the in-memory limit compressed
        ),
      );
      const plain = Array.from({ length: 3 * frames }, (_, i) => xyzFrame(i)).join('');
      const { result, tempFile } = await run(name, Buffer.concat(members));
      expect(result).toMatchObject({ ok: true, compression: 'gzip', detected: 'xyz', size: plain.length });
      expect(await fs.readFile(tempFile, 'latin1')).toBe(plain);
    }
  });

  it('refuses a gzip bomb with 413 and leaves no temp file, small or streamed', async () => {
    // Level 0 keeps the second one past the in-memory limit (4 MB) compressed, so it streams.
    for (const [name, size, level] of [
      ['bomb-small.gz', 16 * 1024 * 1024, 9],
      ['bomb-streamed.gz', 9 * 1024 * 1024, 0],
    ] as const) {
      const zeros = gzipSync(Buffer.alloc(size), { level });
      const { result, left } = await run(name, zeros, 8 * 1024 * 1024);
      expect(result, name).toMatchObject({ ok: false, status: 413, code: 'decompressed_too_large' });
      expect(left, name).toBe(false);
    }
  });

  it.skipIf(!hasBzip2)('unwraps bzip2, and refuses a bzip2 bomb with 413 and no temp file (skipped when no bzip2 tool is installed)', async () => {
    const plain = Array.from({ length: 50 }, (_, i) => xyzFrame(i)).join('');
    const ok = await run('frames.xyz.bz2', execFileSync('bzip2', ['-c'], { input: plain }));
    expect(ok.result).toMatchObject({ ok: true, compression: 'bzip2', detected: 'xyz', size: plain.length });
    const bomb = await run('bomb.bz2', execFileSync('bzip2', ['-c', '-9'], { input: Buffer.alloc(32 * 1024 * 1024), maxBuffer: 1024 ** 3 }), 4 * 1024 * 1024);
    expect(bomb.result).toMatchObject({ ok: false, status: 413, code: 'decompressed_too_large' });
    expect(bomb.left).toBe(false);
    const truncated = await run('cut.bz2', execFileSync('bzip2', ['-c'], { input: plain }).subarray(0, 40));
    expect(truncated.result).toMatchObject({ ok: false, status: 422, code: 'corrupt_compression' });
    expect(truncated.left).toBe(false);
  });
});
