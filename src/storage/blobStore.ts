import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncPath } from '../lib/fsync.js';

export interface BlobStore {
  /** Where a caller may write a new blob before `commit` (same filesystem, so commit is a rename). */
  tempPath(): Promise<string>;
  /** Moves a fully written, fsynced temp file into place under its hash; a no-op if the blob exists. */
  commit(tempFile: string, sha256: string): Promise<{ created: boolean }>;
  has(sha256: string): Promise<boolean>;
  size(sha256: string): Promise<number | undefined>;
  /** Local path of the blob, for workers that read it directly (parsers, engines). */
  localPath(sha256: string): string;
  read(sha256: string, range?: { start: number; end: number }): Readable;
  delete(sha256: string): Promise<void>;
  /** Checks a blob's bytes against its name. */
  verify(sha256: string): Promise<boolean>;
}

const SHA256 = /^[0-9a-f]{64}$/;

function assertHash(sha256: string) {
  if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
}

/** Content-addressed files under `root/sha256/ab/cd/<hash>`; written to a temp file, fsynced, renamed. */
export class LocalBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  /** The temp directory, made once per store (the cleanup sweeps what is in it, never the directory). */
  private tempDir?: Promise<string>;

  async tempPath(): Promise<string> {
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

  localPath(sha256: string): string {
    assertHash(sha256);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  async commit(tempFile: string, sha256: string): Promise<{ created: boolean }> {
    const target = this.localPath(sha256);
    if (await this.has(sha256)) {
      await fs.rm(tempFile, { force: true });
      return { created: false };
    }
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(tempFile, target);
    await fsyncPath(path.dirname(target));
    return { created: true };
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.size(sha256)) !== undefined;
  }

  async size(sha256: string): Promise<number | undefined> {
    try {
      return (await fs.stat(this.localPath(sha256))).size;
    } catch {
      return undefined;
    }
  }

  read(sha256: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.localPath(sha256), range ? { start: range.start, end: range.end } : {});
  }

  async delete(sha256: string): Promise<void> {
    await fs.rm(this.localPath(sha256), { force: true });
  }

  async verify(sha256: string): Promise<boolean> {
    const hash = createHash('sha256');
    for await (const chunk of this.read(sha256)) hash.update(chunk as Buffer);
    return hash.digest('hex') === sha256;
  }
}
