import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import yazl from 'yazl';
import type { ArchiveKind } from '../../entities/ExportArchive.js';
import { digester } from '../../lib/digester.js';
import { fsyncPath } from '../../lib/fsync.js';
import type { BlobStore } from '../../storage/blobStore.js';

/** A stored blob that goes into the archive under `path`. */
export interface ArchiveFile {
  path: string;
  sha256: string;
  size: number;
  mtime: Date;
  /** False for content that is compressed already (BinaryCIF, LZ4 sessions): stored as it is in a zip. */
  compress?: boolean;
}

export interface WrittenArchive {
  sha256: string;
  size: number;
}

/** A blob file whose bytes no longer match its name: the archive must not carry it. */
export class BlobIntegrityError extends Error {
  readonly code = 'blob_corrupt';
}

export const ARCHIVE_MEDIA_TYPES: Record<ArchiveKind, string> = { zip: 'application/zip', 'tar.gz': 'application/gzip' };
export const ARCHIVE_EXTENSIONS: Record<ArchiveKind, string> = { zip: '.zip', 'tar.gz': '.tar.gz' };

/**
 * A blob's bytes as a stream that fails at its end unless they hash to the blob's name and have
 * the expected size, so a damaged blob file can never slip into an archive unnoticed.
 */
function verifiedRead(blobs: BlobStore, file: ArchiveFile): Readable {
  const check = digester(({ sha256, bytes }) =>
    sha256 !== file.sha256 || bytes !== file.size
      ? new BlobIntegrityError(
          `The stored file for ${file.path} is damaged (expected ${file.size} bytes with sha256 ${file.sha256}, read ${bytes} bytes with ${sha256}); an administrator should restore it from a backup.`,
        )
      : undefined,
  ).stream;
  const source = blobs.read(file.sha256);
  source.on('error', (error) => check.destroy(error));
  return source.pipe(check);
}

/**
 * Writes a `.zip` or `.tar.gz` to `target` as a stream: the manifest first (so a reader going
 * through a tar.gz entry by entry meets it before the files), then each blob read from the blob
 * store, checked against its hash on the way. The archive's own sha256 and size are taken while it
 * is written; nothing is held in memory beyond a chunk at a time (and the manifest). Entry times
 * are given, not "now", so the same export written twice is the same bytes. `onFile(i)` is called
 * as file i starts, for progress. The file is fsynced before this resolves.
 */
export async function writeArchive(
  kind: ArchiveKind,
  target: string,
  blobs: BlobStore,
  manifest: { path: string; content: Buffer; mtime: Date },
  files: ArchiveFile[],
  onFile: (index: number) => void = () => {},
): Promise<WrittenArchive> {
  const { stream: measure, result } = digester();
  const output = createWriteStream(target, { flags: 'wx' });
  if (kind === 'zip') await writeZip(blobs, manifest, files, onFile, measure, output);
  else await writeTarGz(blobs, manifest, files, onFile, measure, output);
  await fsyncPath(target);
  const { sha256, bytes } = result();
  return { sha256, size: bytes };
}

async function writeZip(
  blobs: BlobStore,
  manifest: { path: string; content: Buffer; mtime: Date },
  files: ArchiveFile[],
  onFile: (index: number) => void,
  measure: Transform,
  output: NodeJS.WritableStream,
) {
  const zip = new yazl.ZipFile();
  const zipOutput = zip.outputStream as unknown as Readable;
  // yazl reports a failing input as an "error" event on the ZipFile; end the output with it.
  zip.on('error', (error: Error) => zipOutput.destroy(error));
  zip.addBuffer(manifest.content, manifest.path, { mtime: manifest.mtime, compress: true });
  files.forEach((file, index) => {
    zip.addReadStreamLazy(file.path, { mtime: file.mtime, size: file.size, compress: file.compress ?? true }, (callback) => {
      onFile(index);
      const stream = verifiedRead(blobs, file);
      stream.on('error', (error) => zip.emit('error', error));
      callback(null, stream);
    });
  });
  zip.end();
  await pipeline(zipOutput, measure, output);
}

async function writeTarGz(
  blobs: BlobStore,
  manifest: { path: string; content: Buffer; mtime: Date },
  files: ArchiveFile[],
  onFile: (index: number) => void,
  measure: Transform,
  output: NodeJS.WritableStream,
) {
  const pack = tar.pack();
  const gzip = createGzip({ level: 6 });
  pack.on('error', (error: Error) => gzip.destroy(error));
  pack.pipe(gzip);
  const writing = pipeline(gzip, measure, output);
  const entries = (async () => {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name: manifest.path, size: manifest.content.length, mtime: manifest.mtime, mode: 0o644 }, manifest.content, (error) =>
        error ? reject(error) : resolve(),
      );
    });
    for (const [index, file] of files.entries()) {
      onFile(index);
      let settle!: (error?: Error | null) => void;
      const done = new Promise<void>((resolve, reject) => {
        settle = (error) => (error ? reject(error) : resolve());
      });
      done.catch(() => {}); // awaited below; a failure before that must not go unhandled
      const entry = pack.entry({ name: file.path, size: file.size, mtime: file.mtime, mode: 0o644 }, (error) => settle(error));
      // An entry is destroyed with the pack when the archive fails; its error is the run's, already handled.
      entry.on('error', (error: Error) => settle(error));
      for await (const chunk of verifiedRead(blobs, file)) {
        if (!entry.write(chunk)) await once(entry as never, 'drain');
      }
      (entry as unknown as NodeJS.WritableStream).end();
      await done;
    }
    pack.finalize();
  })();
  // Either side failing ends both: a bad entry destroys the output, a broken output stops the entries.
  entries.catch((error) => {
    pack.destroy(error);
    gzip.destroy(error);
  });
  await Promise.all([writing, entries]);
}
