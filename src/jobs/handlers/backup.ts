import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BACKUP_ID, newBackupId } from '../../backup/layout.js';
import { createBackup } from '../../backup/service.js';
import { defineJob } from '../define.js';

/**
 * Database dump + blobs → a backup under BACKUP_DIR, then retention. Scheduled daily (BACKUP_SCHEDULE)
 * or enqueued on demand with a backup id. A redelivered job makes the same backup id again, which
 * createBackup returns as is when complete and redoes when a crash left it partial.
 */
export const backupJob = defineJob({
  name: 'backup',
  queue: 'backup',
  data: z.object({
    backupId: z.string().regex(BACKUP_ID).optional(),
    kind: z.enum(['scheduled', 'manual']).default('scheduled'),
  }),
  jobId: (d) => `backup-${d.backupId ?? newBackupId()}`,
  async handle({ backupId, kind }, ctx) {
    const id = backupId ?? newBackupId(new Date(ctx.job.timestamp), createHash('sha256').update(String(ctx.job.id)).digest('hex').slice(0, 6));
    await ctx.job.updateProgress({ backupId: id, stage: 'running' });
    const summary = await createBackup({ config: ctx.config, databaseUrl: ctx.config.databaseUrl, log: ctx.log }, { kind, id });
    return summary;
  },
});
