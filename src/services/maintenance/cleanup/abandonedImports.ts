import { failBatch } from '../../imports/batches.js';
import { type CleanupStep, StepTally } from './types.js';

/**
 * Imports whose request never finished (the API died while the files streamed in): still
 * `receiving` long after their last sign of life (RESERVATION_MAX_AGE_MS). They are failed with the
 * reason, their quota released; their staged files go with them (and with the stale staging step).
 */
export const abandonedImports: CleanupStep = {
  name: 'abandoned imports',
  async run(ctx) {
    const tally = new StepTally();
    const cutoff = new Date(ctx.now.getTime() - ctx.config.reservationMaxAgeMs);
    const rows = await ctx.em.execute<{ id: string; updated_at: Date }[]>(
      `select id, updated_at from import_batches where state = 'receiving' and updated_at < ? order by updated_at limit 1000`,
      [cutoff],
    );
    for (const row of rows) {
      tally.add({ what: `import ${row.id} (receiving since ${new Date(row.updated_at).toISOString()})`, bytes: 0, reason: 'upload interrupted' }, false);
      if (ctx.dryRun) continue;
      await failBatch(ctx, ctx.em.fork(), row.id, {
        code: 'upload_interrupted',
        status: 400,
        message: 'The files of this import stopped arriving before the request finished; nothing was imported. Send them again.',
      });
    }
    return tally.result();
  },
};
