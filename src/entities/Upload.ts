import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import type { StructureSummary, ValidationReport } from '../formats/types.js';
import { Blob } from './Blob.js';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { Project } from './Project.js';
import { User } from './User.js';

export const UPLOAD_STATES = ['received', 'processing', 'stored', 'rejected', 'failed'] as const;
export type UploadState = (typeof UPLOAD_STATES)[number];
export const TERMINAL_UPLOAD_STATES: readonly UploadState[] = ['stored', 'rejected', 'failed'];

export interface UploadParams {
  name?: string;
  description?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  message?: string;
  /** A checkpoint of the structure's draft: the snapshot that stores it removes the draft. */
  fromDraft?: boolean;
}

export interface UploadError {
  code: string;
  message: string;
  /** HTTP status the synchronous form of this answer carries (415, 422, 413 ...). */
  status: number;
  details?: Record<string, unknown>;
}

/**
 * One upload's way through the pipeline (received → processing → stored | rejected | failed).
 * Postgres, not Redis, is the record: it answers GET /v1/uploads/:id even after a Redis loss.
 */
export const Upload = defineEntity({
  name: 'Upload',
  tableName: 'uploads',
  indexes: [{ properties: ['state', 'updatedAt'] }, { properties: ['project', 'receivedSha256'] }, { properties: ['blob'] }],
  properties: {
    id: idColumn(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    project: () => p.manyToOne(Project).mapToPk().deleteRule('cascade'),
    /** The structure this upload makes or extends; its row exists only once a version is stored. */
    structureId: p.uuid(),
    createsStructure: p.boolean(),
    state: p.enum(UPLOAD_STATES).default('received'),
    filename: p.string(),
    formatHint: p.string().nullable(),
    format: p.string().nullable(),
    compression: p.string().nullable(),
    receivedBytes: p.bigint('number'),
    /** sha256 of the bytes as received (before unwrapping), so ingest can prove staging kept them intact. */
    receivedSha256: p.string().length(64).nullable(),
    params: p.json<UploadParams>().columnType('jsonb').defaultRaw(`'{}'::jsonb`),
    blob: () => p.manyToOne(Blob).mapToPk().nullable().deleteRule('set null'),
    kind: p.string().nullable(),
    summary: p.json<StructureSummary>().columnType('jsonb').nullable(),
    validation: p.json<ValidationReport>().columnType('jsonb').nullable(),
    error: p.json<UploadError>().columnType('jsonb').nullable(),
    version: p.integer().nullable(),
    indexedAt: p.datetime().columnType('timestamptz').nullable(),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type Upload = InferEntity<typeof Upload>;
