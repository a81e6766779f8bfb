import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncPath } from '../lib/fsync.js';
import {
  assertHash,
  type BlobHead,
  BlobMismatchError,
  BlobMissingError,
  type BlobStore,
  type ByteRange,
  isSha256,
  type ListedBlob,
  type PromisedBlob,
  type PutFileOptions,
  promiseChecker,
  sha256Of,
} from './blobStore.js';

const gone = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Content-addressed files under `root/sha256/ab/cd/<hash>`: written to `root/tmp`, checked against
 * what was promised, fsynced, renamed into place (and the directory fsynced). Deleting the last blob
 * of an `ab/cd` directory removes the empty directories too.
 */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local';
  constructor(readonly root: string) {}

  /** The temp directory, made once per store (the cleanup sweeps what is in it, never the directory). */
  private tempDir?: Promise<string>;

  private async tempFile(): Promise<string> {
    this.tempDir ??= (async () => {
      const dir = path.join(this.root, 'tmp');
      await fs.mkdir(dir, { recursive: true });
      return dir;
    })();
    const dir = await this.tempDir.catch((error: unknown) => {
      this.tempDir = undefined;
      throw error;
    });
    return path.join(dir, `${randomUUID()}.part`);
  }

  /** Where the blob lives; only this store and its tests use it. */
  pathOf(sha256: string): string {
    assertHash(sha256);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  async put(source: Readable, promised: PromisedBlob): Promise<{ created: boolean }> {
    assertHash(promised.sha256);
    if (await this.has(promised.sha256)) {
      source.resume();
      return { created: false };
    }
    const temp = await this.tempFile();
    try {
      // fsynced on its own descriptor before that is closed (`flush`), rather than opened again for it.
      await pipeline(source, promiseChecker(promised), createWriteStream(temp, { flags: 'wx', flush: true }));
      return await this.place(temp, promised.sha256);
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  async putFile(file: string, promised: PromisedBlob, options: PutFileOptions = {}): Promise<{ created: boolean }> {
    assertHash(promised.sha256);
    if (!options.move) return this.put(createReadStream(file), promised);
    try {
      if (await this.has(promised.sha256)) return { created: false };
      // Checked where it lies, then renamed in: a file in the caller's scratch on the same disk is never copied.
      if (options.hashed) {
        const { size } = await fs.stat(file);
        if (size !== promised.size) throw new BlobMismatchError(promised, { size });
      } else await pipeline(createReadStream(file), promiseChecker(promised), new PassThrough().resume());
      // An fsync of bytes already on the disk would only force a journal commit of the file's new link.
      if (!options.durable) await fsyncPath(file);
      try {
        return await this.place(file, promised.sha256);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        return await this.put(createReadStream(file), promised);
      }
    } finally {
      // Usually renamed into place by now. One unlink: fs.rm looks the path up twice before it unlinks.
      await fs.unlink(file).catch((error) => {
        if (!gone(error)) throw error;
      });
    }
  }

  /** Renames a checked, fsynced file into place, unless the blob is there already. */
  private async place(file: string, sha256: string): Promise<{ created: boolean }> {
    const target = this.pathOf(sha256);
    for (let attempt = 0; ; attempt++) {
      if (await this.has(sha256)) return { created: false };
      await fs.mkdir(path.dirname(target), { recursive: true });
      try {
        await fs.rename(file, target);
        break;
      } catch (error) {
        // A delete of the directory's last blob removed the directory between mkdir and rename.
        if (!gone(error) || attempt >= 3) throw error;
      }
    }
    await fsyncPath(path.dirname(target));
    return { created: true };
  }

  async head(sha256: string): Promise<BlobHead | undefined> {
    try {
      const stat = await fs.stat(this.pathOf(sha256));
      return { size: stat.size, modifiedAt: stat.mtime };
    } catch {
      return undefined;
    }
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.head(sha256)) !== undefined;
  }

  async size(sha256: string): Promise<number | undefined> {
    return (await this.head(sha256))?.size;
  }

  read(sha256: string, range?: ByteRange): Readable {
    const stream = createReadStream(this.pathOf(sha256), range ? { start: range.start, end: range.end } : {});
    const missing = new PassThrough();
    stream.once('error', (error) => missing.destroy(gone(error) ? new BlobMissingError(sha256) : error));
    return stream.pipe(missing);
  }

  async delete(sha256: string): Promise<void> {
    const file = this.pathOf(sha256);
    await fs.rm(file, { force: true });
    // The empty ab/cd directories go too, so millions of deletions leave no empty tree behind.
    for (const dir of [path.dirname(file), path.dirname(path.dirname(file))]) {
      const removed = await fs.rmdir(dir).then(
        () => true,
        () => false,
      );
      if (!removed) break;
    }
  }

  async *list(prefix = ''): AsyncIterable<ListedBlob> {
    const root = path.join(this.root, 'sha256');
    const level1 = (await fs.readdir(root).catch(() => [] as string[])).filter((d) => d.startsWith(prefix.slice(0, 2)));
    for (const ab of level1) {
      const level2 = (await fs.readdir(path.join(root, ab)).catch(() => [] as string[])).filter((d) => (ab + d).startsWith(prefix.slice(0, 4)));
      for (const cd of level2) {
        for (const name of await fs.readdir(path.join(root, ab, cd)).catch(() => [] as string[])) {
          if (!isSha256(name) || !name.startsWith(prefix)) continue;
          const stat = await fs.stat(path.join(root, ab, cd, name)).catch(() => undefined);
          if (stat?.isFile()) yield { sha256: name, size: stat.size, modifiedAt: stat.mtime };
        }
      }
    }
  }

  async verify(sha256: string): Promise<boolean> {
    try {
      return (await sha256Of(this.read(sha256))) === sha256;
    } catch (error) {
      if (error instanceof BlobMissingError) return false;
      throw error;
    }
  }

  location(sha256: string): string {
    return this.pathOf(sha256);
  }

  async *strays(): AsyncIterable<string> {
    const walk = async function* (dir: string, depth: number): AsyncGenerator<string> {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory() && depth < 2) yield* walk(full, depth + 1);
        else if (depth < 2 || !entry.isFile() || !isSha256(entry.name)) yield full;
        else if (!full.endsWith(path.join(entry.name.slice(0, 2), entry.name.slice(2, 4), entry.name))) yield full;
      }
    };
    yield* walk(path.join(this.root, 'sha256'), 0);
  }

  async withFile<T>(sha256: string, use: (file: string) => Promise<T>): Promise<T> {
    return use(this.pathOf(sha256));
  }

  async close(): Promise<void> {}
}
