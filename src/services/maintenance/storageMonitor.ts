import fs from 'node:fs/promises';
import type { AppContext } from '../../runtime/context.js';

export interface DiskReport {
  path: string;
  totalBytes: number;
  freeBytes: number;
  usedBytes: number;
  freePercent: number;
  /** Set when free space is under DISK_FREE_WARN_BYTES or DISK_FREE_WARN_PERCENT. */
  warning: string | null;
}

export interface OrphanScan {
  /** Blob rows whose file is missing from the blob store. */
  blobRowsWithoutFiles: number;
  /** Files in the blob store with no blob row. */
  blobFilesWithoutRows: number;
  scannedAt: string;
}

/** Where the blobs are: on S3, the objects and bytes under the installation's prefix stand in for disk free. */
export interface BlobStoreReport {
  kind: 'local' | 's3';
  /** A path, or s3://bucket/prefix. */
  location: string;
  objects: number;
  bytes: number;
  scannedAt: string;
}

export interface StorageReport {
  dataDir: string;
  blobStore: BlobStoreReport;
  disk: DiskReport;
  blobs: { count: number; bytes: number; storedBytes: number };
  staging: { files: number; bytes: number };
  orphans: OrphanScan & { source: 'scan'; maxAgeMs: number };
  backups: {
    dir: string;
    count: number;
    lastSuccessful: { id: string; finishedAt: string; sizeBytes: number; totalBytes: number; blobCount: number } | null;
  };
  queues: Record<string, { waiting: number; active: number; delayed: number; failed: number; completed: number }>;
}

const WARN_LOG_EVERY_MS = 5 * 60_000;

function formatGiB(bytes: number) {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * What the storage looks like: disk, blobs, staging, orphans, backups and queues. Shared by
 * /v1/admin/storage, /metrics and /readyz. The orphan counts come from a full walk of the blob
 * store against the blob rows, reused for STORAGE_SCAN_TTL_MS because it grows with the store.
 */
export class StorageMonitor {
  private scan?: { at: number; result: Promise<OrphanScan & { objects: number; bytes: number }> };
  private lastWarnLoggedAt = 0;
  private recent?: { at: number; result: Promise<StorageReport> };

  constructor(private readonly app: AppContext) {}

  async disk(): Promise<DiskReport> {
    const { dataDir, diskFreeWarnBytes, diskFreeWarnPercent } = this.app.config;
    await fs.mkdir(dataDir, { recursive: true });
    const stats = await fs.statfs(dataDir);
    const totalBytes = stats.blocks * stats.bsize;
    const freeBytes = stats.bavail * stats.bsize;
    const usedBytes = (stats.blocks - stats.bfree) * stats.bsize;
    const freePercent = totalBytes > 0 ? (freeBytes / totalBytes) * 100 : 0;
    let warning: string | null = null;
    if (freeBytes < diskFreeWarnBytes || freePercent < diskFreeWarnPercent) {
      warning =
        `The disk holding DATA_DIR (${dataDir}) has ${formatGiB(freeBytes)} free (${freePercent.toFixed(1)}%), ` +
        `under the warning threshold (DISK_FREE_WARN_BYTES ${formatGiB(diskFreeWarnBytes)}, DISK_FREE_WARN_PERCENT ${diskFreeWarnPercent}%). ` +
        'Uploads and backups will fail when it is full.';
      if (Date.now() - this.lastWarnLoggedAt > WARN_LOG_EVERY_MS) {
        this.lastWarnLoggedAt = Date.now();
        this.app.log.warn({ dataDir, freeBytes, freePercent, totalBytes }, 'disk space low');
      }
    }
    return { path: dataDir, totalBytes, freeBytes, usedBytes, freePercent, warning };
  }

  orphans(): Promise<OrphanScan & { objects: number; bytes: number }> {
    const now = Date.now();
    if (!this.scan || now - this.scan.at > this.app.config.storageScanTtlMs) {
      const result = this.scanBlobStore();
      this.scan = { at: now, result };
      result.catch(() => {
        if (this.scan?.result === result) this.scan = undefined;
      });
    }
    return this.scan.result;
  }

  private async scanBlobStore(): Promise<OrphanScan & { objects: number; bytes: number }> {
    const onDisk = new Set<string>();
    let bytes = 0;
    for await (const blob of this.app.blobs.list()) {
      onDisk.add(blob.sha256);
      bytes += blob.size;
    }
    const objects = onDisk.size;
    const rows = (await this.app.orm.em.fork().getConnection().execute<{ sha256: string }[]>('select sha256 from blobs')).map((r) => r.sha256);
    let blobRowsWithoutFiles = 0;
    for (const sha256 of rows) {
      if (!onDisk.delete(sha256)) blobRowsWithoutFiles++;
    }
    return { blobRowsWithoutFiles, blobFilesWithoutRows: onDisk.size, scannedAt: new Date().toISOString(), objects, bytes };
  }

  /** The whole report; reused for a second so one /metrics scrape computes it once. */
  report(): Promise<StorageReport> {
    const now = Date.now();
    if (!this.recent || now - this.recent.at > 1000) {
      const result = this.build();
      this.recent = { at: now, result };
      result.catch(() => {
        if (this.recent?.result === result) this.recent = undefined;
      });
    }
    return this.recent.result;
  }

  private async build(): Promise<StorageReport> {
    const { config } = this.app;
    const connection = this.app.orm.em.fork().getConnection();
    const [disk, orphans, blobRows, backupRows, lastBackupRows, staging, queues] = await Promise.all([
      this.disk(),
      this.orphans(),
      connection.execute<{ count: string; bytes: string | null; stored: string | null }[]>(
        'select count(*) as count, sum(size) as bytes, sum(stored_size) as stored from blobs',
      ),
      connection.execute<{ count: string }[]>(`select count(*) as count from backups where state = 'complete'`),
      connection.execute<{ id: string; finished_at: Date; size_bytes: string; total_bytes: string; blob_count: number }[]>(
        `select id, finished_at, size_bytes, total_bytes, blob_count from backups where state = 'complete' order by finished_at desc limit 1`,
      ),
      this.stagingUsage(),
      this.queueCounts(),
    ]);
    const last = lastBackupRows[0];
    const { objects, bytes, ...orphanCounts } = orphans;
    const { blobs } = this.app;
    const location = blobs.kind === 's3' ? `s3://${config.s3.bucket}/${config.s3.prefix}` : config.blobDir;
    return {
      dataDir: config.dataDir,
      blobStore: { kind: blobs.kind, location, objects, bytes, scannedAt: orphans.scannedAt },
      disk,
      blobs: { count: Number(blobRows[0]?.count ?? 0), bytes: Number(blobRows[0]?.bytes ?? 0), storedBytes: Number(blobRows[0]?.stored ?? 0) },
      staging,
      orphans: { ...orphanCounts, source: 'scan', maxAgeMs: config.storageScanTtlMs },
      backups: {
        dir: config.backupDir,
        count: Number(backupRows[0]?.count ?? 0),
        lastSuccessful: last
          ? {
              id: last.id,
              finishedAt: new Date(last.finished_at).toISOString(),
              sizeBytes: Number(last.size_bytes),
              totalBytes: Number(last.total_bytes),
              blobCount: last.blob_count,
            }
          : null,
      },
      queues,
    };
  }

  private async stagingUsage() {
    let files = 0;
    let bytes = 0;
    for (const entry of await this.app.staging.entries()) {
      files++;
      bytes += entry.bytes;
    }
    return { files, bytes };
  }

  private async queueCounts(): Promise<StorageReport['queues']> {
    const entries = await Promise.all(
      Object.values(this.app.queues).map(async (queue) => {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        return [
          queue.name,
          { waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0, completed: c.completed ?? 0 },
        ] as const;
      }),
    );
    return Object.fromEntries(entries);
  }
}
