/**
 * A PDB file scanned part by part while its bytes are still arriving (an upload being received):
 * each part is scanned on its own (scanChunk, pdbScan.ts) as soon as its last byte is in, so that
 * once the file is complete only the last part, the joins and the phases after the scan are left
 * (parseStructureBytes with `cut`, which joins each part to the scan before it or, where a part's
 * presumptions do not hold, scans it again itself: the result is readPdbAtoms' whatever the cuts).
 */
import type { PdbCut } from './parse.js';
import { type ChunkScan, type ChunkStart, cutInWindow, scanChunk } from './pdbScan.js';

/** About this many bytes a part: small enough that little is left to scan after the last byte. */
const PART_BYTES = 8 * 1024 * 1024;
/** How far past its target a cut is looked for before the search moves on (a region without atom records). */
const WINDOW_BYTES = 1024 * 1024;

export class ArrivingPdb {
  private readonly cuts: ChunkStart[] = [];
  /** scans[k]: the part from cuts[k] to cuts[k + 1]. */
  private readonly scans: ChunkScan[] = [];
  /** Where the search for the next cut starts. */
  private target = 0;

  /** `bytes`: the buffer the file arrives into, from its start (as large as the file may be). */
  constructor(
    private readonly bytes: Buffer,
    private readonly partBytes = PART_BYTES,
  ) {}

  /** The first `arrived` bytes are in: scans every part that is now complete. */
  advance(arrived: number): void {
    for (;;) {
      const found = this.nextCut(arrived);
      if (!found) return;
      const last = this.cuts[this.cuts.length - 1];
      if (last) this.scans.push(scanChunk(this.bytes, last.from, found.from, last.prevLine));
      this.cuts.push(found);
      this.target = found.from + this.partBytes;
    }
  }

  /** The file is complete at `size` bytes: how parseStructureBytes reads it with the parts scanned so far. */
  finish(size: number): PdbCut {
    const bytes = this.bytes.subarray(0, size);
    const scans = new Map(this.scans.map((scan) => [scan.from, scan]));
    return {
      cuts: this.cuts.filter((cut) => cut.from < size),
      // A part scanned as it arrived, or (the last one) scanned now.
      scanner: async (from, to, prevLine, minLineLength) => {
        const scan = scans.get(from);
        if (scan && scan.to === to && scan.prevLine === prevLine && minLineLength === 54) return scan;
        return scanChunk(bytes, from, to, prevLine, minLineLength);
      },
    };
  }

  /**
   * The next cut at or after `target` among complete lines below `arrived`: an atom record that
   * follows an atom record of another residue (chunkStarts' rule). Undefined until one has arrived;
   * a window searched in full without one moves the search on.
   */
  private nextCut(arrived: number): ChunkStart | undefined {
    // Only what has arrived: a search for a line's end stops there, not at the end of the buffer.
    const b = this.bytes.subarray(0, arrived);
    for (;;) {
      if (this.target >= arrived) return undefined;
      // The first line, or the line after the one `target` falls in.
      const s = this.target === 0 ? 0 : b.indexOf(10, this.target) + 1;
      if (s === 0 && this.target > 0) return undefined;
      const limit = Math.min(arrived, s + WINDOW_BYTES);
      const cut = cutInWindow(b, s, limit, true);
      if (cut === 'incomplete') return undefined;
      if (cut) return cut;
      // The whole window is in and holds no cut: look further on.
      if (limit === arrived) return undefined;
      this.target = limit;
    }
  }
}
