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

  async remove(uploadId: string): Promise<void> {
    await fs.rm(this.dir(uploadId), { recursive: true, force: true });
  }

  /** Entries in the staging root (for tests and the cleanup schedule). */
  async list(): Promise<string[]> {
    return fs.readdir(this.root).catch(() => []);
  }
}
