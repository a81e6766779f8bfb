import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { Project } from './Project.js';
import { User } from './User.js';

export const IMPORT_SOURCES = ['files', 'archive', 'pdb_ids'] as const;
export type ImportSource = (typeof IMPORT_SOURCES)[number];
/**
 * receiving (the API is streaming the files) → expanding (an archive is being unpacked by the
 * `importexpand` job) → running (items are being processed) → completed | failed. `failed` means
 * the batch as a whole could not be processed (refused archive, quota); bad files only fail items.
 */
export const IMPORT_BATCH_STATES = ['receiving', 'expanding', 'running', 'completed', 'failed'] as const;
export type ImportBatchState = (typeof IMPORT_BATCH_STATES)[number];
export const LIVE_IMPORT_BATCH_STATES: readonly ImportBatchState[] = ['receiving', 'expanding', 'running'];

export interface ImportError {
  code: string;
  message: string;
  /** HTTP status the synchronous form of this refusal carries (507, 413, 422 ...). */
  status?: number;
  details?: Record<string, unknown>;
}

export interface ImportOptions {
  /** Added to every imported structure. */
  tags?: string[];
  /** Merged into every imported structure's metadata (an export manifest's own metadata wins). */
  metadata?: Record<string, unknown>;
  /** The staged archive (source `archive`). */
  archive?: { format: 'zip' | 'tar' | 'tar.gz'; bytes: number; filename: string };
  /** Set when the archive held a valid export manifest, which the items restore. */
  manifest?: { exportId: string; structures: number };
}

/**
 * One bulk import: its items are the truth of what happened to every file (import_items); the
 * counts are computed from them. Postgres, not Redis, is the record: it answers GET /v1/imports/:id
 * after a Redis loss, and the import reconciler re-adds the jobs from it.
 */
export const ImportBatch = defineEntity({
  name: 'ImportBatch',
  tableName: 'import_batches',
  indexes: [{ properties: ['owner', 'createdAt'] }, { properties: ['state', 'updatedAt'] }],
  properties: {
    id: idColumn(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade'),
    project: () => p.manyToOne(Project).mapToPk().deleteRule('cascade').index(),
    source: p.enum(IMPORT_SOURCES),
    state: p.enum(IMPORT_BATCH_STATES).default('receiving'),
    error: p.json<ImportError>().columnType('jsonb').nullable(),
    options: p.json<ImportOptions>().columnType('jsonb').defaultRaw(`'{}'::jsonb`),
    /** The BullMQ flow's parent job (`batch-<id>`): follow it on /v1/jobs/:id/events. */
    jobId: p.string(),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
    finishedAt: p.datetime().columnType('timestamptz').nullable(),
  },
});
export type ImportBatch = InferEntity<typeof ImportBatch>;
