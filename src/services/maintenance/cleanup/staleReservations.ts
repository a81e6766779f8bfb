import { formatBytes } from '../../../lib/bytes.js';
import { lockQuota } from '../../quota/usage.js';
import { type CleanupStep, StepTally } from './types.js';

/**
 * Quota held by uploads that will never finish: reservations older than RESERVATION_MAX_AGE_MS
 * whose upload has no row (the API died while streaming) or has ended. A reservation whose staging
 * file is still being written is kept, however old: a slow upload is still an upload.
 */
export const staleReservations: CleanupStep = {
  name: 'stale quota reservations',
  async run(ctx) {
    const tally = new StepTally();
    const cutoff = new Date(ctx.now.getTime() - ctx.config.reservationMaxAgeMs);
    const rows = await ctx.em.execute<{ upload_id: string; owner_id: string; bytes: string; state: string | null }[]>(
      `select r.upload_id, r.owner_id, r.bytes, u.state
         from quota_reservations r left join uploads u on u.id = r.upload_id
        where r.updated_at < ? and (u.id is null or u.state in ('stored', 'rejected', 'failed'))
          -- An import holds a reservation under its own id while its files wait to become uploads.
          and not exists (select 1 from import_batches b where b.id = r.upload_id and b.state in ('receiving', 'expanding', 'running'))
        order by r.updated_at limit 10000`,
      [cutoff],
    );
    for (const row of rows) {
      const staged = await ctx.staging.stat(row.upload_id);
      if (!row.state && staged && staged.modifiedAt.getTime() >= cutoff.getTime()) continue;
      const bytes = Number(row.bytes);
      tally.add({ what: `reservation of upload ${row.upload_id}`, bytes, reason: `${formatBytes(bytes)} of quota released` }, false);
      if (ctx.dryRun) continue;
      await ctx.em.fork().transactional(async (tx) => {
        await lockQuota(tx, row.owner_id);
        await tx.execute('delete from quota_reservations where upload_id = ? and updated_at < ?', [row.upload_id, cutoff]);
      });
    }
    return tally.result();
  },
};
