import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { digester } from '../lib/digester.js';
import { fsyncPath } from '../lib/fsync.js';
import { BlobMismatchError, type BlobStore } from '../storage/blobStore.js';
import type { BackupLayout } from './layout.js';

export { digester };

export async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return undefined;
  }
}

/** sha256 and size of a file as it is on disk. */
export async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Copies one blob from the blob store into the backup blob area, gzip-compressed, checking its
 * bytes against its name on the way (a corrupted blob is not backed up as if it were sound).
 * Returns the compressed size.
 */
export async function copyBlobIntoBackup(blobs: BlobStore, layout: BackupLayout, sha256: string): Promise<number> {
  const target = layout.blobPath(sha256);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const temp = `${target}.${randomBytes(4).toString('hex')}.part`;
  const content = digester();
  try {
    await pipeline(blobs.read(sha256), content.stream, createGzip(), createWriteStream(temp));
    const { sha256: actual } = content.result();
    if (actual !== sha256) throw new Error(`blob ${sha256} in the blob store is corrupted (its bytes hash to ${actual}); it was not backed up`);
    await fsyncPath(temp);
    await fs.rename(temp, target);
    await fsyncPath(path.dirname(target));
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  return (await fs.stat(target)).size;
}

/** Unpacks a backed-up blob and checks it: the sha256 and size of its content. */
export async function checkBackedUpBlob(layout: BackupLayout, sha256: string, size: number): Promise<string | undefined> {
  const file = layout.blobPath(sha256);
  if ((await fileSize(file)) === undefined) return `blob ${sha256} is missing from the backup`;
  const content = digester();
  try {
    await pipeline(
      createReadStream(file),
      createGunzip(),
      content.stream,
      new Writable({
        write(_chunk, _encoding, done) {
          done();
        },
      }),
    );
  } catch (error) {
    return `blob ${sha256} cannot be unpacked: ${(error as Error).message}`;
  }
  const actual = content.result();
  if (actual.sha256 !== sha256) return `blob ${sha256} is corrupted: its content hashes to ${actual.sha256}`;
  if (actual.bytes !== size) return `blob ${sha256} has ${actual.bytes} bytes, the manifest says ${size}`;
  return undefined;
}

/** Puts a backed-up blob back into the blob store, which checks its sha256 and size before it is visible. */
export async function restoreBlob(blobs: BlobStore, layout: BackupLayout, sha256: string, size: number): Promise<void> {
  const source = createReadStream(layout.blobPath(sha256));
  const unpacked = createGunzip();
  source.once('error', (error) => unpacked.destroy(error));
  try {
    await blobs.put(source.pipe(unpacked), { sha256, size });
  } catch (error) {
    if (error instanceof BlobMismatchError) throw new Error(`blob ${sha256} in the backup is corrupted (${error.message})`);
    throw error;
  }
}

/** Every file under `dir`, recursively (paths). */
export async function* walkFiles(dir: string): AsyncGenerator<string> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(full);
    else if (entry.isFile()) yield full;
  }
}

/** Blob files are copied a few at a time: each ends in fsyncs, whose waits overlap. */
export const BLOB_COPY_CONCURRENCY = 4;
