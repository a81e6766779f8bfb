import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { ImportBatch } from './ImportBatch.js';
import { Upload } from './Upload.js';

/** pending → processing → stored | rejected (the file's fault) | failed (ours) | skipped (not imported, with a reason). */
export const IMPORT_ITEM_STATES = ['pending', 'processing', 'stored', 'rejected', 'failed', 'skipped'] as const;
export type ImportItemState = (typeof IMPORT_ITEM_STATES)[number];
export const TERMINAL_IMPORT_ITEM_STATES: readonly ImportItemState[] = ['stored', 'rejected', 'failed', 'skipped'];

export interface ImportItemError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * What an export manifest says about this file: one version of a structure to restore. Items of
 * one structure share `key` and are stored in `order` by one job (the group's first item's).
 */
export interface ImportRestore {
  /** The structure's id in the manifest. */
  key: string;
  /** The structure it becomes here (decided when the archive was expanded). */
  structureId: string;
  order: number;
  number: number;
  message: string | null;
  pinned: boolean;
  current: boolean;
  sha256: string;
  name: string;
  description: string;
  tags: string[];
  metadata: Record<string, unknown>;
  filename: string;
  /** When the version and the structure were created, and by whom, in the exporting molvault. */
  createdAt?: string;
  author?: string | null;
  structureCreatedAt?: string;
  /** On the first version's item only: the structure's relationships, targets by manifest id. */
  relationships?: { type: string; targetKey: string; createdAt: string }[];
}

/**
 * One file of an import (a multipart part, an archive entry, a PDB id). Its staged bytes live in
 * staging under the item's id, which is also the id of the Upload the item becomes.
 */
export const ImportItem = defineEntity({
  name: 'ImportItem',
  tableName: 'import_items',
  uniques: [{ properties: ['batch', 'position'] }],
  indexes: [{ properties: ['batch', 'state'] }, { properties: ['sha256'] }],
  properties: {
    id: idColumn(),
    batch: () => p.manyToOne(ImportBatch).mapToPk().deleteRule('cascade'),
    position: p.integer(),
    /** The path in the archive, the file name as sent (may be a relative path), or the PDB id. */
    name: p.text(),
    state: p.enum(IMPORT_ITEM_STATES).default('pending'),
    /** The item's Upload (same id), once it has one. */
    upload: () => p.manyToOne(Upload).mapToPk().nullable().deleteRule('set null'),
    structureId: p.uuid().nullable(),
    error: p.json<ImportItemError>().columnType('jsonb').nullable(),
    /** sha256 of the content (unwrapped: the blob's hash), once known. */
    sha256: p.string().length(64).nullable(),
    /** sha256 and size of the bytes as staged (before unwrapping). */
    receivedSha256: p.string().length(64).nullable(),
    /** gzip, bzip2 or none, from the first bytes as staged; null where it was not recorded then. */
    receivedCompression: p.text().nullable(),
    /** Staged inside a bundle (services/upload/bundles.ts) at this offset, not as an entry of its own. */
    stagedBundle: p.uuid().nullable(),
    stagedOffset: p.bigint('number').nullable(),
    size: p.bigint('number').nullable(),
    restore: p.json<ImportRestore>().columnType('jsonb').nullable(),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type ImportItem = InferEntity<typeof ImportItem>;
