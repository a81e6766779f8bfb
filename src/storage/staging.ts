import fs from 'node:fs/promises';
import path from 'node:path';

/** Per-upload staging: DATA_DIR/staging/<uploadId>/; removed on success, failure and by cleanup. */
export class Staging {
  constructor(readonly root: string) {}

  dir(uploadId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(uploadId)) throw new Error(`not an upload id: ${uploadId}`);
    return path.join(this.root, uploadId);
  }

  file(uploadId: string): string {
    return path.join(this.dir(uploadId), 'upload');
  }

  async create(uploadId: string): Promise<string> {
    await fs.mkdir(this.dir(uploadId), { recursive: true });
    return this.file(uploadId);
  }

  async exists(uploadId: string): Promise<boolean> {
    return fs
      .access(this.file(uploadId))
      .then(() => true)
      .catch(() => false);
  }

  /**
   * Removes the upload's staging directory. The usual case (the one file, then the directory) takes
   * two calls; anything else there falls back to a recursive removal, which costs several per entry.
   */
  async remove(uploadId: string): Promise<void> {
    const dir = this.dir(uploadId);
    const gone = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';
    try {
      await fs.unlink(this.file(uploadId)).catch((error) => {
        if (!gone(error)) throw error;
      });
      await fs.rmdir(dir).catch((error) => {
        if (!gone(error)) throw error;
      });
    } catch {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Whether the staged file is there and, if so, its first bytes (up to `bytes`), in one open:
   * undefined when it is missing.
   */
  async head(uploadId: string, bytes: number): Promise<Buffer | undefined> {
    const handle = await fs.open(this.file(uploadId), 'r').catch((error) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    });
    if (!handle) return undefined;
    try {
      const head = Buffer.alloc(bytes);
      const { bytesRead } = await handle.read(head, 0, bytes, 0);
      return head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  /** Entries in the staging root (for tests and the cleanup schedule). */
  async list(): Promise<string[]> {
    return fs.readdir(this.root).catch(() => []);
  }
}
