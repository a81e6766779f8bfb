import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn } from './common.js';

export const BACKUP_STATES = ['running', 'complete', 'failed'] as const;
export type BackupState = (typeof BACKUP_STATES)[number];
export const BACKUP_KINDS = ['scheduled', 'manual', 'restore-point'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

/**
 * One backup, as the database knows it. The manifest in the backup's directory says the same and
 * more (every table file and blob with its checksum); it is the record that survives a lost
 * database, and this table is rebuilt from the manifests after a restore.
 */
export const Backup = defineEntity({
  name: 'Backup',
  tableName: 'backups',
  properties: {
    /** Sortable and readable: 20261122T221000Z-3f9a1c. */
    id: p.string().length(32).primary(),
    kind: p.enum(BACKUP_KINDS),
    state: p.enum(BACKUP_STATES).default('running'),
    createdAt: createdAtColumn(),
    finishedAt: p.datetime().columnType('timestamptz').nullable(),
    /** Bytes this backup wrote: its dump files and the blobs no earlier backup had. */
    sizeBytes: p.bigint('number').default(0),
    /** Bytes needed to restore it: its dump files and every blob it references. */
    totalBytes: p.bigint('number').default(0),
    blobCount: p.integer().default(0),
    newBlobCount: p.integer().default(0),
    path: p.text(),
    error: p.text().nullable(),
  },
});
export type Backup = InferEntity<typeof Backup>;
