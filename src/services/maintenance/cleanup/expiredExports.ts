import { formatBytes } from '../../../lib/bytes.js';
import { dueExports, releaseExport } from '../../exports/exports.js';
import { type CleanupStep, StepTally } from './types.js';

/**
 * Export archives past their expiry (EXPORT_RETENTION after they were finished): the archive blob
 * is deleted (unless something else holds the same bytes) and the export marked expired, so its
 * owner's usage drops and a download answers 410 with a sentence. The row stays.
 */
export const expiredExports: CleanupStep = {
  name: 'expired exports',
  async run(ctx) {
    const tally = new StepTally();
    for (const due of await dueExports(ctx.em, ctx.now)) {
      const item = { what: `export ${due.id}`, bytes: due.size, reason: `expired ${due.expiresAt.toISOString()} (${formatBytes(due.size)})` };
      if (ctx.dryRun) {
        tally.add(item);
        continue;
      }
      const released = await releaseExport(ctx.em.fork(), ctx.blobs, due.id, { remove: false, expiredBefore: ctx.now });
      if (released) tally.add({ ...item, bytes: released.bytesFreed });
    }
    return tally.result();
  },
};
