import { createHash } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { newBackupId } from '../../backup/layout.js';
import { BackupRefused, createBackup, verifyBackup } from '../../backup/service.js';
import { backupJob, verifyBackupJob } from '../../queue/jobs.js';
import { handleJob, type JobContext } from '../define.js';

const backupEnv = (ctx: JobContext) => ({ config: ctx.config, databaseUrl: ctx.config.databaseUrl, log: ctx.log });

/**
 * Database dump + blobs → a backup under BACKUP_DIR, then retention. Scheduled daily (BACKUP_SCHEDULE)
 * or enqueued on demand (POST /v1/admin/backups) with a backup id. A redelivered job makes the same
 * backup id again, which createBackup returns as is when complete and redoes when a crash left it partial.
 */
export const backupHandler = handleJob(backupJob, {
  async handle({ backupId, kind }, ctx) {
    const id = backupId ?? newBackupId(new Date(ctx.job.timestamp), createHash('sha256').update(String(ctx.job.id)).digest('hex').slice(0, 6));
    await ctx.job.updateProgress({ backupId: id, stage: 'running' });
    return createBackup(backupEnv(ctx), { kind, id });
  },
});

/** Checks a backup's checksums and restores its dump into a scratch database (POST /v1/admin/backups/:id/verify). */
export const verifyBackupHandler = handleJob(verifyBackupJob, {
  async handle({ backupId }, ctx) {
    try {
      return await verifyBackup(backupEnv(ctx), backupId);
    } catch (error) {
      if (error instanceof BackupRefused) throw new UnrecoverableError(error.message);
      throw error;
    }
  },
});
