/**
 * A PDB file scanned part by part as its bytes arrive (formats/pdbArriving.ts, the parse of an
 * upload while it is received) against the parse of the complete file: the same outcome for every
 * fixture and corpus PDB file (gzipped ones unpacked, the pathological ones in bad/ included),
 * with parts small enough that every file is cut many times, the bytes arriving in pieces of
 * uneven sizes into a buffer larger than the file (as the API allocates the declared length).
 * And through the CPU pool (CpuPool.receive): the same outcome, a thread held only when one is free,
 * and a dropped upload letting its thread go; and read from the file it is written to as it arrives
 * (CpuPool.receiveFile): the same outcome however the writes lag behind what was received.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseStructureBytes } from '../src/formats/parse.js';
import { ArrivingPdb } from '../src/formats/pdbArriving.js';
import type { ParseOutcome } from '../src/formats/types.js';
import { CpuPool } from '../src/pool/cpuPool.js';
import { CORPUS, hasCorpus } from './helpers/corpus.js';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');

async function content(file: string): Promise<Buffer> {
  const bytes = await fs.readFile(file);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

const comparable = (outcome: ParseOutcome | undefined) => outcome && { ...outcome, report: { ...outcome.report, parseMs: 0 } };

/** The file arriving in pieces of 1 to `piece` bytes into a buffer with room to spare, parts of about `partBytes`. */
async function arriving(bytes: Buffer, partBytes: number, piece: number): Promise<ParseOutcome> {
  const buffer = Buffer.alloc(bytes.length + 4096, 0x41);
  const parts = new ArrivingPdb(buffer, partBytes);
  let at = 0;
  let k = 0;
  while (at < bytes.length) {
    const n = Math.min(bytes.length - at, 1 + ((k++ * 7919) % piece));
    bytes.copy(buffer, at, at, at + n);
    at += n;
    parts.advance(at);
  }
  return parseStructureBytes(buffer.subarray(0, bytes.length), 'pdb', { cut: parts.finish(bytes.length) });
}

async function pdbFiles(): Promise<string[]> {
  const files = ['ngl_1crn.pdb', 'ngl_noChainNameTerRecords.pdb', 'ngl_multi-models-example.pdb', 'chemfiles_insertion-code.pdb'].map((name) =>
    path.join(FIXTURES, name),
  );
  if (!hasCorpus) return files;
  for (const folder of ['pdb', 'bad']) {
    for (const name of (await fs.readdir(path.join(CORPUS, folder))).sort()) {
      if (folder === 'pdb' || /\.pdb(\.gz)?$/.test(name)) files.push(path.join(CORPUS, folder, name));
    }
  }
  return files;
}

describe('a PDB file scanned as its bytes arrive', () => {
  it('reads every fixture and corpus PDB file as the parse of the whole file does', async () => {
    const files = await pdbFiles();
    expect(files.length).toBeGreaterThan(hasCorpus ? 80 : 3);
    for (const file of files) {
      const bytes = await content(file);
      const whole = await parseStructureBytes(bytes, 'pdb');
      // Parts of about a dozen lines and of a few hundred; pieces smaller than a line and larger than a part.
      for (const [partBytes, piece] of [
        [1000, 50],
        [20_000, 70_000],
      ]) {
        expect(comparable(await arriving(bytes, partBytes, piece)), `${path.basename(file)} parts of ${partBytes}`).toEqual(comparable(whole));
      }
    }
  }, 600_000);
});

describe('CpuPool.receive', () => {
  const pool = new CpuPool(1, 60_000, 1024);
  afterAll(() => pool.close());

  it('parses an upload as it arrives, holds a thread only when one is free, and lets it go when dropped', async () => {
    const bytes = await content(path.join(FIXTURES, 'ngl_1crn.pdb'));
    const receipt = pool.receive('pdb', bytes.length + 100);
    expect(receipt).toBeDefined();
    // The one thread is held: no second receipt.
    expect(pool.receive('pdb', 1000)).toBeUndefined();
    for (let at = 0; at < bytes.length; at += 333) receipt?.push(bytes.subarray(at, at + 333));
    expect(comparable(await receipt?.end())).toEqual(comparable(await parseStructureBytes(bytes, 'pdb')));

    // A thread left free for other tasks: none to take.
    expect(pool.receive('pdb', 1000, 1)).toBeUndefined();
    // Dropped midway: nothing comes of it, and the thread serves the next task.
    const dropped = pool.receive('pdb', bytes.length);
    dropped?.push(bytes.subarray(0, 1000));
    dropped?.abort();
    expect(await dropped?.end()).toBeUndefined();
    // More bytes than announced: dropped.
    const over = pool.receive('pdb', 10);
    over?.push(bytes.subarray(0, 11));
    expect(await over?.end()).toBeUndefined();
    expect((await pool.parse({ path: path.join(FIXTURES, 'ngl_1crn.pdb'), format: 'pdb' })).ok).toBe(true);
  }, 120_000);
});

describe('CpuPool.receiveFile', () => {
  const pool = new CpuPool(1, 60_000, 1024);
  let dir: string;
  afterAll(async () => {
    await pool.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /**
   * The file announced in pieces and written a few pieces behind (as the API's file stream lags
   * behind what it received), created only after the first pieces were announced; windows of 4 MB
   * are read as they fill, so a file of several windows is read while it grows.
   */
  async function written(file: string, bytes: Buffer, piece: number, lag: number): Promise<ParseOutcome | undefined> {
    const receipt = pool.receiveFile(file, bytes.length + 300);
    expect(receipt).toBeDefined();
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += piece) pieces.push(bytes.subarray(at, at + piece));
    let writtenUpTo = 0;
    const writeUpTo = (k: number) => {
      for (; writtenUpTo < k; writtenUpTo++) {
        if (writtenUpTo === 0) writeFileSync(file, pieces[0]);
        else appendFileSync(file, pieces[writtenUpTo]);
      }
    };
    for (let k = 0; k < pieces.length; k++) {
      receipt?.push(pieces[k]);
      writeUpTo(k + 1 - lag);
      if (k % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const ended = receipt?.end();
    // The last writes land after the last byte was announced.
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeUpTo(pieces.length);
    return ended;
  }

  it('reads a file as it is written, to the outcome of the whole file', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-receive-file-'));
    const crambin = await content(path.join(FIXTURES, 'ngl_1crn.pdb'));
    expect(comparable(await written(path.join(dir, 'small'), crambin, 333, 3))).toEqual(comparable(await parseStructureBytes(crambin, 'pdb')));
    // Past two windows: the reader waits for bytes mid-file.
    const atoms = Array.from(
      { length: 130_000 },
      (_, i) =>
        `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA ${String.fromCharCode(65 + (Math.floor(i / 40_000) % 26))}${String((Math.floor(i / 4) % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`,
    ).join('');
    const large = Buffer.from(`HEADER    RECEIVED FROM ITS FILE\n${atoms}END\n`, 'latin1');
    expect(large.length).toBeGreaterThan(2 * 4 * 1024 * 1024);
    const outcome = await written(path.join(dir, 'large'), large, 64 * 1024, 4);
    expect(outcome?.ok).toBe(true);
    expect(comparable(outcome)).toEqual(comparable(await parseStructureBytes(large, 'pdb')));
  }, 120_000);

  it('lets its thread go when the upload is dropped or longer than announced', async () => {
    const bytes = await content(path.join(FIXTURES, 'ngl_1crn.pdb'));
    // Dropped before its file was made.
    const early = pool.receiveFile(path.join(dir, 'never'), bytes.length);
    expect(pool.receiveFile(path.join(dir, 'other'), 1000)).toBeUndefined();
    early?.push(bytes.subarray(0, 1000));
    early?.abort();
    expect(await early?.end()).toBeUndefined();
    // Dropped midway, its file half written.
    const file = path.join(dir, 'dropped');
    const dropped = pool.receiveFile(file, bytes.length);
    writeFileSync(file, bytes.subarray(0, 1000));
    dropped?.push(bytes.subarray(0, 1000));
    dropped?.abort();
    expect(await dropped?.end()).toBeUndefined();
    // More bytes than announced.
    const over = pool.receiveFile(path.join(dir, 'over'), 10);
    over?.push(bytes.subarray(0, 11));
    expect(await over?.end()).toBeUndefined();
    expect((await pool.parse({ path: path.join(FIXTURES, 'ngl_1crn.pdb'), format: 'pdb' })).ok).toBe(true);
  }, 120_000);
});
