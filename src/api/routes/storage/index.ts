import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../services/context.js';
import type { StorageMonitor } from '../../../services/storageMonitor.js';
import { requireAdmin } from '../../middleware/auth.js';
import { route } from '../../route.js';

const queueCounts = z.object({ waiting: z.number(), active: z.number(), delayed: z.number(), failed: z.number(), completed: z.number() });

export const storageReportSchema = z.object({
  dataDir: z.string(),
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

/** Administrators' view of the storage: disk, blobs, staging, orphans, backups, queues. */
export function storageRoutes(app: AppContext, monitor: StorageMonitor): Router {
  const router = new Router();
  router.use('/v1/admin/storage', requireAdmin());
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/admin/storage',
      summary: 'Disk free and used, blob count and bytes, staging, orphans, last backup and queue depths (administrators)',
      tag: 'Administration',
      auth: 'admin',
      responses: {
        200: { description: 'The storage as it is now (orphan counts from a scan at most STORAGE_SCAN_TTL_MS old)', schema: storageReportSchema },
        403: { description: 'Not an administrator' },
      },
    },
    async () => monitor.report(),
  );
  return router;
}
