import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { z } from 'zod';
import { BACKUP_ID, BackupLayout, newBackupId } from '../../../backup/layout.js';
import { listBackups } from '../../../backup/service.js';
import { BACKUP_KINDS, BACKUP_STATES } from '../../../entities/Backup.js';
import { enqueue } from '../../../queue/enqueue.js';
import { backupJob, verifyBackupJob } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import type { StorageMonitor } from '../../../services/maintenance/storageMonitor.js';
import { requireAdministrator } from '../../access.js';
import { notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { preferredWait, waitForJobEnd } from '../../http/prefer.js';
import { errorSchema } from '../../openapi.js';
import { presentJob } from '../../presenters/jobs.js';
import { route } from '../../route.js';
import { jobSchema } from '../../schemas/jobs.js';

const queueCounts = z.object({ waiting: z.number(), active: z.number(), delayed: z.number(), failed: z.number(), completed: z.number() });

export const storageReportSchema = z.object({
  dataDir: z.string(),
  blobStore: z.object({ kind: z.enum(['local', 's3']), location: z.string(), objects: z.number(), bytes: z.number(), scannedAt: z.string() }),
  disk: z.object({
    path: z.string(),
    totalBytes: z.number(),
    freeBytes: z.number(),
    usedBytes: z.number(),
    freePercent: z.number(),
    warning: z.string().nullable(),
  }),
  blobs: z.object({ count: z.number(), bytes: z.number(), storedBytes: z.number() }),
  staging: z.object({ files: z.number(), bytes: z.number() }),
  orphans: z.object({
    blobRowsWithoutFiles: z.number(),
    blobFilesWithoutRows: z.number(),
    scannedAt: z.string(),
    source: z.literal('scan'),
    maxAgeMs: z.number(),
  }),
  backups: z.object({
    dir: z.string(),
    count: z.number(),
    lastSuccessful: z.object({ id: z.string(), finishedAt: z.string(), sizeBytes: z.number(), totalBytes: z.number(), blobCount: z.number() }).nullable(),
  }),
  queues: z.record(z.string(), queueCounts),
});

export const backupSummarySchema = z.object({
  id: z.string(),
  kind: z.enum(BACKUP_KINDS),
  state: z.enum(BACKUP_STATES),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  sizeBytes: z.number(),
  totalBytes: z.number(),
  blobCount: z.number(),
  newBlobCount: z.number(),
  tables: z.number(),
  rows: z.number(),
  path: z.string(),
  error: z.string().nullable(),
});

const acceptedJob = z.object({ job: z.object({ id: z.string(), queue: z.string(), name: z.string() }), backup: z.object({ id: z.string() }) });
const endedJob = z.object({ job: jobSchema, backup: z.object({ id: z.string() }) });

/** Administrators' view of the storage (disk, blobs, staging, orphans, backups, queues) and of the backups. */
export function storageRoutes(app: AppContext, monitor: StorageMonitor): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/admin/storage',
      access: 'admin',
      summary: 'Disk free and used, blob count and bytes, staging, orphans, last backup and queue depths (administrators)',
      tag: 'Administration',
      responses: {
        200: { description: 'The storage as it is now (orphan counts from a scan at most STORAGE_SCAN_TTL_MS old)', schema: storageReportSchema },
        403: { description: 'Not an administrator' },
      },
    },
    async ({ user }) => {
      requireAdministrator(user);
      return monitor.report();
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/admin/backups',
      access: 'admin',
      summary: 'The backups in BACKUP_DIR, oldest first (read from their manifests)',
      tag: 'Administration',
      responses: { 200: { description: 'Backups', schema: z.object({ items: z.array(backupSummarySchema) }) }, 403: { description: 'Not an administrator' } },
    },
    async ({ user }) => {
      requireAdministrator(user);
      return { items: await listBackups(app.config.backupDir) };
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/admin/backups',
      access: 'admin',
      summary: 'Make a backup now (a job on the backup queue; follow it at /v1/jobs/:id)',
      tag: 'Administration',
      responses: {
        200: { description: 'With Prefer: wait=N, the backup job once it ended in time (its state, result or error)', schema: endedJob },
        202: { description: 'The backup job', schema: acceptedJob },
        403: { description: 'Not an administrator' },
      },
    },
    async ({ user, koa }) => {
      requireAdministrator(user);
      const data = { backupId: newBackupId(), kind: 'manual' as const, requestId: randomUUID() };
      const jobId = await enqueue(app.queues, backupJob, data);
      await auditRequest(app.orm.em.fork(), koa, { action: 'admin.backup.create', targetType: 'backup', targetId: data.backupId, details: { jobId } });
      koa.set('Location', `/v1/jobs/${jobId}`);
      const ended = await waitForJobEnd(app.queues[backupJob.queue], jobId, preferredWait(koa));
      if (ended) return { job: await presentJob(ended), backup: { id: data.backupId } };
      koa.status = 202;
      return { job: { id: jobId, queue: backupJob.queue, name: backupJob.name }, backup: { id: data.backupId } };
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/admin/backups/:id/verify',
      access: 'admin',
      summary: 'Verify a backup: every checksum, and a restore of its dump into a scratch database (a job)',
      tag: 'Administration',
      params: z.object({ id: z.string().regex(BACKUP_ID, 'is not a backup id (they look like 20261122T221000Z-3f9a1c)') }),
      responses: {
        200: { description: 'With Prefer: wait=N, the verify job once it ended in time: its result says ok and lists any problems', schema: endedJob },
        202: { description: 'The verify job; its result says ok and lists any problems', schema: acceptedJob },
        403: { description: 'Not an administrator' },
        404: { description: 'No such backup', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      requireAdministrator(user);
      if (!(await new BackupLayout(app.config.backupDir).readManifest(params.id))) throw notFound('backup');
      const data = { backupId: params.id, requestId: randomUUID() };
      const jobId = await enqueue(app.queues, verifyBackupJob, data, { attempts: 1 });
      await auditRequest(app.orm.em.fork(), koa, { action: 'admin.backup.verify', targetType: 'backup', targetId: params.id, details: { jobId } });
      koa.set('Location', `/v1/jobs/${jobId}`);
      const ended = await waitForJobEnd(app.queues[verifyBackupJob.queue], jobId, preferredWait(koa));
      if (ended) return { job: await presentJob(ended), backup: { id: params.id } };
      koa.status = 202;
      return { job: { id: jobId, queue: verifyBackupJob.queue, name: verifyBackupJob.name }, backup: { id: params.id } };
    },
  );
  return router;
}
