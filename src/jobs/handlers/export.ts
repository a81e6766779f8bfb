import { UnrecoverableError } from 'bullmq';
import { exportJob } from '../../queue/jobs.js';
import { ExportFailure, failExportJob } from '../../services/exports/exports.js';
import { writeExport } from '../../services/exports/run.js';
import { handleJob } from '../define.js';

/** Export row → its archive, committed as a blob the row holds (services/exports/run.ts). */
export const exportHandler = handleJob(exportJob, {
  async handle({ exportId }, ctx) {
    try {
      return await writeExport(ctx, exportId);
    } catch (error) {
      // Recorded on the row already (over quota, a damaged blob, nothing left): retrying cannot help.
      if (error instanceof ExportFailure) throw new UnrecoverableError(error.message);
      throw error; // retried with backoff; onFinalFailure records it when retries run out
    }
  },
  async onFinalFailure(input, error, ctx) {
    await failExportJob(ctx.em, input.exportId, error);
  },
});
