import { createHash } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { BACKUP_ID, newBackupId } from '../../backup/layout.js';
import { BackupRefused, createBackup, verifyBackup } from '../../backup/service.js';
import { defineJob, type JobContext } from '../define.js';

const backupEnv = (ctx: JobContext) => ({ config: ctx.config, databaseUrl: ctx.config.databaseUrl, log: ctx.log });

/**
 * Database dump + blobs → a backup under BACKUP_DIR, then retention. Scheduled daily (BACKUP_SCHEDULE)
 * or enqueued on demand (POST /v1/admin/backups) with a backup id. A redelivered job makes the same
 * backup id again, which createBackup returns as is when complete and redoes when a crash left it partial.
 */
export const backupJob = defineJob({
  name: 'backup',
  queue: 'backup',
  data: z.object({
    backupId: z.string().regex(BACKUP_ID).optional(),
    kind: z.enum(['scheduled', 'manual']).default('scheduled'),
    /** Set by the API, so the job id has the form /v1/jobs/:id accepts. */
    requestId: z.uuid().optional(),
  }),
  jobId: (d) => `backup-${d.requestId ?? d.backupId ?? newBackupId()}`,
  async handle({ backupId, kind }, ctx) {
    const id = backupId ?? newBackupId(new Date(ctx.job.timestamp), createHash('sha256').update(String(ctx.job.id)).digest('hex').slice(0, 6));
    await ctx.job.updateProgress({ backupId: id, stage: 'running' });
    return createBackup(backupEnv(ctx), { kind, id });
  },
});

/** Checks a backup's checksums and restores its dump into a scratch database (POST /v1/admin/backups/:id/verify). */
export const verifyBackupJob = defineJob({
  name: 'verify',
  queue: 'backup',
  data: z.object({ backupId: z.string().regex(BACKUP_ID), requestId: z.uuid() }),
  jobId: (d) => `verify-${d.requestId}`,
  async handle({ backupId }, ctx) {
    try {
      return await verifyBackup(backupEnv(ctx), backupId);
    } catch (error) {
      if (error instanceof BackupRefused) throw new UnrecoverableError(error.message);
      throw error;
    }
  },
});
