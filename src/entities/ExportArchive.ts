import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Blob } from './Blob.js';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { Project } from './Project.js';
import { User } from './User.js';

export const EXPORT_STATES = ['pending', 'running', 'completed', 'failed', 'expired'] as const;
export type ExportState = (typeof EXPORT_STATES)[number];
export const EXPORT_VERSIONS = ['current', 'all'] as const;
export type ExportVersions = (typeof EXPORT_VERSIONS)[number];
export const ARCHIVE_KINDS = ['zip', 'tar.gz'] as const;
export type ArchiveKind = (typeof ARCHIVE_KINDS)[number];

/** Something the export could not do as asked and did otherwise (a version left in its original format). */
export interface ExportProblem {
  code: string;
  message: string;
  structureId?: string;
  version?: number;
}

export interface ExportError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * One export of a project or a selection of structures into a `.zip` or `.tar.gz` with a
 * `manifest.json` (pending → running → completed | failed; completed → expired). The finished
 * archive is a blob like any other, held (and charged to the owner as `exports`) through
 * `blob_sha256` until it expires; the row stays after that, so the download can say 410.
 */
export const ExportArchive = defineEntity({
  name: 'ExportArchive',
  tableName: 'export_archives',
  indexes: [{ properties: ['owner', 'createdAt'] }, { properties: ['state', 'expiresAt'] }],
  properties: {
    id: idColumn(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade'),
    /** The exported project; null for a selection (or once the project is deleted: the archive outlives it). */
    project: () => p.manyToOne(Project).mapToPk().nullable().deleteRule('set null').index(),
    /** The selected structure ids, for a selection export. */
    selection: p.json<string[]>().columnType('jsonb').nullable(),
    /** "original", or the format name every version is converted to. */
    format: p.string(),
    versions: p.enum(EXPORT_VERSIONS).default('current'),
    archive: p.enum(ARCHIVE_KINDS).default('zip'),
    state: p.enum(EXPORT_STATES).default('pending'),
    /** The download's file name, decided when the export is asked for (`<project name>-<date>.zip`). */
    filename: p.string(),
    /** The finished archive (sha256 of its bytes); null until completed and again once expired. */
    blob: () => p.manyToOne(Blob).mapToPk().nullable().deleteRule('set null').index(),
    size: p.bigint('number').default(0),
    /** Files in the archive, the manifest included. */
    fileCount: p.integer().default(0),
    problems: p.json<ExportProblem[]>().columnType('jsonb').defaultRaw(`'[]'::jsonb`),
    error: p.json<ExportError>().columnType('jsonb').nullable(),
    expiresAt: p.datetime().columnType('timestamptz'),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
    finishedAt: p.datetime().columnType('timestamptz').nullable(),
  },
});
export type ExportArchive = InferEntity<typeof ExportArchive>;
