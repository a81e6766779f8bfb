/**
 * Threads that scan parts of a large PDB file while the parse thread that asked scans the first
 * (readPdbAtomsSplit, formats/pdbFast.ts). Each parse thread keeps one helper, started the first
 * time a large file comes and kept for the next (idle, it holds no event loop open). The file's
 * bytes are shared with it, not copied: they must be in a SharedArrayBuffer (readShared). A helper
 * that fails or dies costs only time: its part is then scanned by the parse thread itself.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PdbSplit } from '../formats/parse.js';
import type { ChunkScan } from '../formats/pdbScan.js';

const HELPER_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scanWorker.mjs');

/**
 * From this size on a PDB file is read in parts (PDB_SPLIT_MIN_BYTES; 0, the default: never). A
 * helper costs memory (its own heap, and its part's arrays until they are joined) and CPU time (its
 * start, its own warm-up, the join) for wall time saved only where a core is idle: bench/README.md.
 */
let splitMinBytes = 0;

/** Sets this thread's PDB_SPLIT_MIN_BYTES (the pool passes it to each thread). */
export function splitPdbFrom(bytes: number): void {
  splitMinBytes = bytes;
}

/** Whether a PDB file of this size is read in parts. */
export function splitsPdb(size: number): boolean {
  return splitMinBytes > 0 && size >= splitMinBytes;
}

class ScanHelper {
  private readonly worker: Worker;
  private next = 0;
  private readonly pending = new Map<number, (chunk: ChunkScan | undefined) => void>();
  dead = false;

  constructor() {
    this.worker = new Worker(HELPER_FILE);
    this.worker.unref();
    this.worker.on('message', (message: { id: number; chunk?: ChunkScan }) => {
      const done = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (this.pending.size === 0) this.worker.unref();
      if (message.chunk) partsScannedByHelpers++;
      done?.(message.chunk);
    });
    const fail = () => {
      this.dead = true;
      for (const done of this.pending.values()) done(undefined);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', fail);
  }

  scan(bytes: Uint8Array, from: number, to: number, prevLine: number, minLineLength: number): Promise<ChunkScan | undefined> {
    if (this.dead) return Promise.resolve(undefined);
    const id = this.next++;
    // Held open while it works: the part's result is awaited.
    this.worker.ref();
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ id, buffer: bytes.buffer, byteOffset: bytes.byteOffset, byteLength: bytes.byteLength, from, to, prevLine, minLineLength });
    });
  }
}

let helper: ScanHelper | undefined;

/** Parts this thread's helpers scanned and handed back (tests check the helper is used). */
export let partsScannedByHelpers = 0;

/** This thread's helper, started (again, after a death) when needed. */
function scanHelper(): ScanHelper {
  if (!helper || helper.dead) helper = new ScanHelper();
  return helper;
}

/** How to read these bytes in parts (parseStructureBytes' `split`), or undefined: too small, or not in shared memory. */
export function pdbSplit(bytes: Uint8Array): PdbSplit | undefined {
  if (!splitsPdb(bytes.length) || !(bytes.buffer instanceof SharedArrayBuffer)) return undefined;
  const scanner = scanHelper();
  // Parts of at least a quarter of the threshold: a smaller one costs more than it saves.
  return { scanner: (from, to, prevLine, minLineLength) => scanner.scan(bytes, from, to, prevLine, minLineLength), parts: 2, minBytes: splitMinBytes / 4 };
}

/** A file's bytes in shared memory (a helper thread reads them where they are). */
export async function readShared(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.from(new SharedArrayBuffer(size));
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(bytes, at, Math.min(size - at, 16 * 1024 * 1024), at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === size ? bytes : bytes.subarray(0, at);
  } finally {
    await handle.close();
  }
}
