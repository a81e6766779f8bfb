import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BackupKind, BackupState } from '../entities/Backup.js';
import { fsyncPath } from '../lib/fsync.js';

/**
 * On disk, under BACKUP_DIR:
 *   blobs/ab/cd/<sha256>.gz     every blob any backup holds, gzip-compressed, stored once (shared)
 *   <backup id>/manifest.json   what the backup is: tables with checksums, migrations, every blob
 *   <backup id>/db/<table>.copy.gz   one gzip'd COPY text dump per table, from one snapshot
 * A manifest describes itself (format and version), so `backup list` and `restore` need nothing else.
 */
export const MANIFEST_FORMAT = 'molvault-backup';
export const MANIFEST_VERSION = 1;

export interface TableDump {
  name: string;
  /** Columns in the order the file has them (generated columns are left out). */
  columns: string[];
  rows: number;
  file: string;
  /** sha256 and size of the gzip file as written. */
  sha256: string;
  bytes: number;
}

export interface BlobEntry {
  sha256: string;
  size: number;
  /** Size of the gzip file in the shared blob area. */
  storedBytes: number;
  /** true when this backup copied the blob; false when an earlier backup already had it. */
  copied: boolean;
}

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  id: string;
  kind: BackupKind;
  state: BackupState;
  createdAt: string;
  finishedAt: string | null;
  error: string | null;
  database: {
    method: 'logical-copy';
    serverVersion: string;
    /** Applied migrations at the moment of the snapshot, in order. */
    migrations: string[];
    tables: TableDump[];
    sequences: { name: string; lastValue: string | null; isCalled: boolean }[];
  };
  blobs: BlobEntry[];
  /** Blob rows whose file was missing from the blob store when the backup ran. */
  missingBlobs: string[];
  totals: { sizeBytes: number; totalBytes: number; blobCount: number; newBlobCount: number };
}

export const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

export function newBackupId(at = new Date(), suffix = randomBytes(3).toString('hex')): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${suffix}`;
}

export class BackupLayout {
  constructor(readonly root: string) {}

  backupDir(id: string): string {
    if (!BACKUP_ID.test(id)) throw new Error(`"${id}" is not a backup id (they look like 20261122T221000Z-3f9a1c)`);
    return path.join(this.root, id);
  }

  manifestPath(id: string): string {
    return path.join(this.backupDir(id), 'manifest.json');
  }

  tableFile(id: string, file: string): string {
    return path.join(this.backupDir(id), 'db', file);
  }

  blobPath(sha256: string): string {
    return path.join(this.root, 'blobs', sha256.slice(0, 2), sha256.slice(2, 4), `${sha256}.gz`);
  }

  async writeManifest(manifest: BackupManifest): Promise<void> {
    const target = this.manifestPath(manifest.id);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(temp, `${JSON.stringify(manifest, null, 2)}\n`);
    await fsyncPath(temp);
    await fs.rename(temp, target);
    await fsyncPath(path.dirname(target));
  }

  async readManifest(id: string): Promise<BackupManifest | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.manifestPath(id), 'utf8');
    } catch {
      return undefined;
    }
    const manifest = JSON.parse(text) as BackupManifest;
    if (manifest.format !== MANIFEST_FORMAT) throw new Error(`${this.manifestPath(id)} is not a molvault backup manifest`);
    if (manifest.formatVersion > MANIFEST_VERSION) {
      throw new Error(`backup ${id} was written by a newer molvault (manifest version ${manifest.formatVersion}); upgrade to read it`);
    }
    return manifest;
  }

  /** Every backup with a manifest, oldest first (by creation time). */
  async list(): Promise<BackupManifest[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.root);
    } catch {
      return [];
    }
    const manifests: BackupManifest[] = [];
    for (const name of names.filter((n) => BACKUP_ID.test(n)).sort()) {
      const manifest = await this.readManifest(name).catch(() => undefined);
      if (manifest) manifests.push(manifest);
    }
    // Ids sort by second; two backups in the same second sort by when they started.
    return manifests.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }
}
