import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import type { BlobStore } from './blobStore.js';
import { LocalBlobStore } from './localBlobStore.js';
import { LocalStaging, S3Staging, type Staging } from './staging.js';

export type StorageConfig = Pick<Config, 'blobStore' | 's3' | 'blobDir' | 'stagingDir' | 'scratchDir'>;

export interface Stores {
  blobs: BlobStore;
  staging: Staging;
}

/** Where copies of blobs and staged files are streamed for code that needs a file on disk. */
export const fetchScratchDir = (config: Pick<Config, 'scratchDir'>) => config.scratchDir;

/**
 * The blob store and staging that BLOB_STORE names. On S3 both live in the one bucket (made if it is
 * missing), so an API and workers on different hosts share them without sharing a disk.
 */
export async function openStores(config: StorageConfig): Promise<Stores> {
  if (config.blobStore === 's3') {
    const { objects, S3BlobStore } = await openS3(config);
    return { blobs: new S3BlobStore(objects, fetchScratchDir(config)), staging: new S3Staging(objects, fetchScratchDir(config)) };
  }
  return { blobs: new LocalBlobStore(config.blobDir), staging: new LocalStaging(config.stagingDir) };
}

/** A blob store of the given kind, for `molvault blobs migrate` and backups, which may hold both. */
export async function openBlobStore(config: StorageConfig, kind: 'local' | 's3'): Promise<BlobStore> {
  if (kind === 's3') {
    const { objects, S3BlobStore } = await openS3(config);
    return new S3BlobStore(objects, fetchScratchDir(config));
  }
  return new LocalBlobStore(config.blobDir);
}

// The AWS SDK is loaded only by a process configured for S3: it is a good part of a process's start.
async function openS3(config: StorageConfig) {
  const [{ S3BlobStore }, { ensureBucket }, { S3Objects }] = await Promise.all([import('./s3BlobStore.js'), import('./s3Client.js'), import('./s3Objects.js')]);
  const objects = new S3Objects(config.s3);
  await ensureBucket(objects.client, config.s3.bucket);
  return { objects, S3BlobStore };
}

/**
 * A fresh file name in the process's scratch directory (DATA_DIR/scratch, made if missing) for a
 * blob being prepared before `putFile(…, { move: true })`: on the local store's disk it is renamed in.
 */
export async function scratchFile(config: Pick<Config, 'scratchDir'>, label: string): Promise<string> {
  await fs.mkdir(config.scratchDir, { recursive: true });
  return path.join(config.scratchDir, `${label}-${randomUUID()}.part`);
}
