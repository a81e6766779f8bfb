import { collectGarbage } from '../gc.js';
import type { CleanupStep } from './types.js';

/** Blobs nothing refers to, and blob files with no row, past the grace period (see services/gc.ts). */
export const garbageCollection: CleanupStep = {
  name: 'garbage collection',
  async run(ctx) {
    const report = await collectGarbage(ctx, { dryRun: ctx.dryRun, now: ctx.now });
    const items = [
      ...report.blobs.items.map((i) => ({ what: `blob ${i.sha256}`, bytes: i.bytes, reason: 'unreferenced' })),
      ...report.files.items.map((i) => ({ what: `file ${i.path}`, bytes: i.bytes, reason: 'no blob row' })),
    ];
    return { removed: report.blobs.removed + report.files.removed, bytesFreed: report.blobs.bytesFreed + report.files.bytesFreed, items };
  },
};
