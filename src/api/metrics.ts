import type { Context, Next } from 'koa';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AppContext } from '../runtime/context.js';
import { countExportsByState } from '../services/exports/requests.js';
import type { StorageMonitor, StorageReport } from '../services/maintenance/storageMonitor.js';

export function createMetrics(app: AppContext, storage: StorageMonitor) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'molvault_' });
  const requests = new Histogram({
    name: 'molvault_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const errors = new Counter({ name: 'molvault_http_errors_total', help: 'Responses with status >= 500', registers: [registry] });
  new Gauge({
    name: 'molvault_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const queue of Object.values(app.queues)) {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
      }
    },
  });
  // Read from Postgres at scrape time, so they count what every worker process did.
  const exportCounts = () => countExportsByState(app.orm.em.fork());
  new Gauge({
    name: 'molvault_exports',
    help: 'Export archives by state (pending, running, completed, failed, expired)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await exportCounts();
      for (const state of ['pending', 'running', 'completed', 'failed', 'expired']) this.set({ state }, Number(rows.find((r) => r.state === state)?.n ?? 0));
    },
  });
  new Gauge({
    name: 'molvault_export_archive_bytes',
    help: 'Bytes of the export archives held now (completed, not yet expired)',
    registers: [registry],
    async collect() {
      this.set(Number((await exportCounts()).find((r) => r.state === 'completed')?.bytes ?? 0));
    },
  });
  storageGauges(registry, storage);
  const middleware = async (ctx: Context, next: Next) => {
    const end = requests.startTimer();
    try {
      await next();
    } finally {
      const routePath = (ctx as { _matchedRoute?: string })._matchedRoute ?? (ctx.path.startsWith('/admin/queues') ? '/admin/queues' : 'unmatched');
      end({ method: ctx.method, route: String(routePath), status: String(ctx.status) });
      if (ctx.status >= 500) errors.inc();
    }
  };
  return { registry, middleware };
}

/** Storage gauges, all read from one StorageMonitor report per scrape. */
function storageGauges(registry: Registry, storage: StorageMonitor) {
  const gauge = (name: string, help: string, value: (report: StorageReport) => number | undefined) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = value(await storage.report());
        if (v !== undefined) this.set(v);
      },
    });
  gauge('molvault_disk_free_bytes', 'Free bytes (for unprivileged users) on the filesystem holding DATA_DIR', (r) => r.disk.freeBytes);
  gauge('molvault_disk_used_bytes', 'Used bytes on the filesystem holding DATA_DIR', (r) => r.disk.usedBytes);
  gauge('molvault_disk_total_bytes', 'Size of the filesystem holding DATA_DIR', (r) => r.disk.totalBytes);
  gauge('molvault_disk_free_warning', '1 when free space is under DISK_FREE_WARN_BYTES or DISK_FREE_WARN_PERCENT', (r) => (r.disk.warning ? 1 : 0));
  gauge('molvault_blobs', 'Blob rows', (r) => r.blobs.count);
  gauge('molvault_blob_bytes', 'Bytes of all blobs (uncompressed content)', (r) => r.blobs.bytes);
  gauge('molvault_staging_bytes', 'Bytes in staging (uploads in flight and leftovers)', (r) => r.staging.bytes);
  gauge('molvault_staging_files', 'Files in staging', (r) => r.staging.files);
  gauge('molvault_blob_store_objects', 'Blobs in the blob store, a directory or an S3 bucket (last blob store scan)', (r) => r.blobStore.objects);
  gauge('molvault_blob_store_bytes', 'Bytes of the blobs in the blob store (last blob store scan)', (r) => r.blobStore.bytes);
  gauge('molvault_orphan_blob_rows', 'Blob rows without a file (last blob store scan)', (r) => r.orphans.blobRowsWithoutFiles);
  gauge('molvault_orphan_blob_files', 'Blob store files without a row (last blob store scan)', (r) => r.orphans.blobFilesWithoutRows);
  gauge('molvault_last_backup_timestamp_seconds', 'When the last successful backup finished (unix time; 0: none yet)', (r) =>
    r.backups.lastSuccessful ? Date.parse(r.backups.lastSuccessful.finishedAt) / 1000 : undefined,
  );
  gauge('molvault_last_backup_size_bytes', 'Bytes the last successful backup wrote', (r) => r.backups.lastSuccessful?.sizeBytes);
  gauge(
    'molvault_last_backup_total_bytes',
    'Bytes the last successful backup needs to restore (dump and every blob)',
    (r) => r.backups.lastSuccessful?.totalBytes,
  );
}
