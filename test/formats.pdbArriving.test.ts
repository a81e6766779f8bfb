/**
 * A PDB file scanned part by part as its bytes arrive (formats/pdbArriving.ts, the parse of an
 * upload while it is received) against the parse of the complete file: the same outcome for every
 * fixture and corpus PDB file (gzipped ones unpacked, the pathological ones in bad/ included),
 * with parts small enough that every file is cut many times, the bytes arriving in pieces of
 * uneven sizes into a buffer larger than the file (as the API allocates the declared length).
 * And through the CPU pool (CpuPool.receive): the same outcome, a thread held only when one is free,
 * and a dropped upload letting its thread go.
 */
import fs from 'node:fs/promises';
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
