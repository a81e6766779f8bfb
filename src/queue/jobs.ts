import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BACKUP_ID, newBackupId } from '../backup/layout.js';
import { FORMATS } from '../formats/types.js';
import { type JobContract, jobContract } from './contract.js';
import { diffKey, optionsKey } from './keys.js';

// Every job molvault runs, as a contract: name, queue, data and deterministic id. Whoever enqueues
// imports the contract from here; src/jobs/registry.ts binds each one to its handler.

const uploadStage = z.object({ uploadId: z.uuid(), ownerId: z.uuid() });

/** Staged upload → unwrapped, hashed, format sniffed, content-addressed into the blob store. */
export const ingestJob = jobContract({ name: 'ingest', queue: 'ingest', data: uploadStage, jobId: (d) => `ingest-${d.uploadId}` });

/** Stored blob → parsed in piscina, checked, summarised; a bad file is rejected with its reasons. */
export const validateJob = jobContract({ name: 'validate', queue: 'validate', data: uploadStage, jobId: (d) => `validate-${d.uploadId}` });

/** Validated upload → a new StructureVersion, numbered under a row lock, in one transaction. */
export const snapshotJob = jobContract({ name: 'snapshot', queue: 'snapshot', data: uploadStage, jobId: (d) => `snapshot-${d.uploadId}` });

const indexData = z.object({
  structureId: z.uuid(),
  /** Not needed (the structure names its owner); accepted from older enqueuers. */
  ownerId: z.uuid().optional(),
  /** Set when an upload triggered the indexing: makes the job id deterministic per upload. */
  uploadId: z.uuid().optional(),
  /** Otherwise a stamp of the change (e.g. updatedAt in ms), one job per change. */
  stamp: z.string().optional(),
  /** A bulk import's chunk: all these structures (structureId is the first), and the uploads that made them. */
  structureIds: z.array(z.uuid()).max(1000).optional(),
  uploadIds: z.array(z.uuid()).max(1000).optional(),
});

/**
 * Structure → its search document upserted (or deleted once the structure is gone). The only index
 * writer besides `molvault reindex`. Enqueue it through `enqueueIndex` (services/search/indexing.ts).
 */
export const indexJob = jobContract({
  name: 'index',
  queue: 'index',
  data: indexData,
  jobId: (d) => (d.uploadId ? `index-${d.uploadId}` : `index-${d.structureId}-${d.stamp ?? 'now'}`),
});

/** The jobs of one upload, in the order they run: each hands the upload to the next. */
export const UPLOAD_JOBS = [ingestJob, validateJob, snapshotJob, indexJob] as const;

/** Scheduled on the index queue: finds where the search index and Postgres disagree and re-enqueues it. */
export const searchDriftJob = jobContract({
  name: 'searchDrift',
  queue: 'index',
  data: z.object({ sample: z.number().int().min(0).optional() }),
  jobId: () => `searchDrift-${Date.now()}`,
});

/** Scheduled: re-enqueues accepted work whose jobs are missing from Redis (services/maintenance/reconcile.ts). */
export const reconcileJob = jobContract({
  name: 'reconcile',
  queue: 'cleanup',
  data: z.object({ olderThanMs: z.number().int().min(0).optional(), stamp: z.string().optional() }),
  jobId: (d) => `reconcile-${d.stamp ?? Date.now()}`,
});

/** Scheduled: stuck uploads, stale reservations, staging, temp files and scratch dirs (services/maintenance/cleanup). */
export const cleanupJob = jobContract({
  name: 'cleanup',
  queue: 'cleanup',
  data: z.object({ dryRun: z.boolean().optional(), stamp: z.string().optional() }),
  jobId: (d) => `cleanup-${d.stamp ?? Date.now()}`,
});

/** Scheduled: unreferenced blobs and blob files without rows, after the grace period (services/maintenance/gc.ts). */
export const gcJob = jobContract({
  name: 'gc',
  queue: 'cleanup',
  data: z.object({ dryRun: z.boolean().optional(), stamp: z.string().optional() }),
  jobId: (d) => `gc-${d.stamp ?? Date.now()}`,
});

/** Nightly and on demand: every user's usage recomputed from Postgres; drift is corrected and logged. */
export const usageJob = jobContract({
  name: 'usage',
  queue: 'cleanup',
  data: z.object({ stamp: z.string().optional() }),
  jobId: (d) => `usage-${d.stamp ?? Date.now()}`,
});

const diffSide = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), format: z.enum(FORMATS) });
const diffData = z.object({
  /** The structure the diff was asked for (ownership of the job, and its id); the cache itself is per blob pair. */
  structureId: z.uuid(),
  ownerId: z.uuid(),
  from: diffSide,
  to: diffSide,
  options: z.object({ moveThreshold: z.number(), bfactorThreshold: z.number(), occupancyThreshold: z.number(), limit: z.number().int() }),
});
export type DiffJobData = z.infer<typeof diffData>;

export function diffJobId(d: DiffJobData): string {
  return `diff-${d.structureId}-${diffKey(d.from.sha256, d.to.sha256, d.options).slice(0, 32)}`;
}

/** Two stored blobs → their structural diff, computed in the piscina pool and cached in version_diffs. */
export const diffJob = jobContract({ name: 'diff', queue: 'diff', data: diffData, jobId: diffJobId });

/**
 * Database dump + blobs → a backup under BACKUP_DIR, then retention. Scheduled daily (BACKUP_SCHEDULE)
 * or enqueued on demand (POST /v1/admin/backups) with a backup id.
 */
export const backupJob = jobContract({
  name: 'backup',
  queue: 'backup',
  data: z.object({
    backupId: z.string().regex(BACKUP_ID).optional(),
    kind: z.enum(['scheduled', 'manual']).default('scheduled'),
    /** Set by the API, so the job id has the form /v1/jobs/:id accepts. */
    requestId: z.uuid().optional(),
  }),
  jobId: (d) => `backup-${d.requestId ?? d.backupId ?? newBackupId()}`,
});

/** Checks a backup's checksums and restores its dump into a scratch database (POST /v1/admin/backups/:id/verify). */
export const verifyBackupJob = jobContract({
  name: 'verify',
  queue: 'backup',
  data: z.object({ backupId: z.string().regex(BACKUP_ID), requestId: z.uuid() }),
  jobId: (d) => `verify-${d.requestId}`,
});

const convertData = z.object({
  /** The stored blob to convert (a content hash: the blob's id). */
  sourceSha256: z.string().regex(/^[0-9a-f]{64}$/),
  format: z.enum(FORMATS),
  options: z.record(z.string(), z.unknown()).default({}),
  /** Who asked first; anyone owning a version of the same blob may follow the job. */
  ownerId: z.uuid(),
});
export type ConvertJobData = z.infer<typeof convertData>;

/**
 * The conversion job's id: one per (source blob, format, options), so asking twice, from anywhere,
 * enqueues one job. A UUID-shaped digest keeps it in the `<name>-<uuid>-<suffix>` job id form.
 */
export function conversionJobId(sourceSha256: string, format: string, options: Record<string, unknown>): string {
  const digest = createHash('sha256')
    .update(`${sourceSha256}\n${format}\n${optionsKey(options)}`)
    .digest('hex');
  const uuid = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
  return `convert-${uuid}-${format}`;
}

/** Stored blob + target format → derived blob via the engine pool, recorded as a Derivation. */
export const convertJob = jobContract({
  name: 'convert',
  queue: 'convert',
  data: convertData,
  jobId: (d) => conversionJobId(d.sourceSha256, d.format, d.options),
});

const exportData = z.object({ exportId: z.uuid(), ownerId: z.uuid() });
export type ExportJobData = z.infer<typeof exportData>;
export const exportJobId = (exportId: string) => `export-${exportId}`;

/** Writes an export archive (services/exports) and commits it as a blob the export row holds. */
export const exportJob = jobContract({ name: 'export', queue: 'export', data: exportData, jobId: (d) => exportJobId(d.exportId) });

// A bulk import is a BullMQ flow on the ingest queue: the batch job is the parent, the expansion,
// the chunks and the items are its children (services/imports/flow.ts).

const batchData = z.object({ batchId: z.uuid(), ownerId: z.uuid() });

/** The flow's parent job: follow an import's progress on /v1/jobs/batch-<id>/events. */
export const batchJobId = (batchId: string) => `batch-${batchId}`;
export const expandJobId = (batchId: string) => `importexpand-${batchId}`;
export const itemJobId = (itemId: string) => `importitem-${itemId}`;
export const chunkJobId = (batchId: string, chunk: number) => `importchunk-${batchId}-c${chunk}`;

/** The parent of an import's flow: runs once every child has ended, fails what is left open, closes the batch. */
export const importBatchJob = jobContract({ name: 'batch', queue: 'ingest', data: batchData, jobId: (d) => batchJobId(d.batchId) });

/** A child of the batch job for an archive: unpacks it into items, then adds one child per item. */
export const importExpandJob = jobContract({ name: 'importexpand', queue: 'ingest', data: batchData, jobId: (d) => expandJobId(d.batchId) });

/** A child of the batch job: one file of an import (or one restored structure's versions). */
export const importItemJob = jobContract({
  name: 'importitem',
  queue: 'ingest',
  data: z.object({ batchId: z.uuid(), itemId: z.uuid(), ownerId: z.uuid() }),
  jobId: (d) => itemJobId(d.itemId),
});

/** A child of the batch job: the plain files of one chunk of consecutive positions, through the upload stages together. */
export const importChunkJob = jobContract({
  name: 'importchunk',
  queue: 'ingest',
  data: z.object({ batchId: z.uuid(), ownerId: z.uuid(), chunk: z.number().int().min(0) }),
  jobId: (d) => chunkJobId(d.batchId, d.chunk),
});

/** Every job molvault runs. The registry refuses to start unless each has exactly one handler. */
export const JOB_CONTRACTS: readonly JobContract<never>[] = [
  ingestJob,
  validateJob,
  snapshotJob,
  indexJob,
  reconcileJob,
  searchDriftJob,
  usageJob,
  diffJob,
  backupJob,
  verifyBackupJob,
  convertJob,
  exportJob,
  cleanupJob,
  gcJob,
  importBatchJob,
  importItemJob,
  importChunkJob,
  importExpandJob,
] as JobContract<never>[];

/** The contract of a job name (e.g. read from a job id with jobNameFromId), if there is one. */
export function jobContractNamed(name: string): JobContract<never> | undefined {
  return JOB_CONTRACTS.find((contract) => contract.name === name);
}
