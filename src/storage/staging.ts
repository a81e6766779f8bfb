import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncPath } from '../lib/fsync.js';
import type { S3Objects } from './s3Objects.js';

export interface StagedEntry {
  id: string;
  bytes: number;
  modifiedAt: Date;
}

/**
 * Uploads in flight, one entry per upload (or import item) id, written by the API and read by the
 * worker that ingests it, which may run on another host. Removed on success, on failure, and by
 * the cleanup schedule when a crash left one behind.
 */
export interface Staging {
  readonly kind: 'local' | 's3';
  /** Streams `source` into the entry (replacing one there); durable once it resolves. On failure nothing is left. */
  write(id: string, source: Readable, options?: { signal?: AbortSignal }): Promise<void>;
  exists(id: string): Promise<boolean>;
  size(id: string): Promise<number | undefined>;
  /** Size and last write of the entry, or undefined when it is missing. */
  stat(id: string): Promise<Omit<StagedEntry, 'id'> | undefined>;
  /** The entry's first bytes (up to `bytes`), or undefined when it is missing. */
  head(id: string, bytes: number): Promise<Buffer | undefined>;
  read(id: string): Readable;
  /** Gives the entry another id (one archive sent as a multipart file becomes its batch's). */
  move(from: string, to: string): Promise<void>;
  /** Removes the entry (any name `list` gave, a stray file included); nothing if it is gone. */
  remove(id: string): Promise<void>;
  /** `remove` for many entries (one request per thousand on the object store). */
  removeMany(ids: readonly string[]): Promise<void>;
  /** Every entry's id (for tests and checks that nothing was left). */
  list(): Promise<string[]>;
  /** Every entry, with its size and age (for the cleanup schedule and monitoring). */
  entries(): Promise<StagedEntry[]>;
  /** A file holding the entry for the duration of `use`: the staged file itself, or a copy in scratch. */
  withFile<T>(id: string, use: (file: string) => Promise<T>): Promise<T>;
  /**
   * The file `write` writes the entry to on this host, for a reader beside the writer (an upload
   * parsed as it arrives); undefined where entries are not files here (the object store).
   */
  writtenFile(id: string): string | undefined;
}

function assertId(id: string) {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`not an upload id: ${id}`);
}

/** Names `remove` accepts: upload ids, and whatever else a crash or a person left in the staging area. */
function assertName(name: string) {
  if (!/^[\w.-]+$/.test(name) || name === '.' || name === '..') throw new Error(`not a staging entry: ${name}`);
}

const gone = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';
/** How many local staging entries are removed side by side. */
const REMOVE_AT_ONCE = 32;

/** DATA_DIR/staging/<id>/upload, fsynced before the API answers. */
export class LocalStaging implements Staging {
  readonly kind = 'local';
  constructor(readonly root: string) {}

  dir(id: string): string {
    assertId(id);
    return path.join(this.root, id);
  }

  file(id: string): string {
    return path.join(this.dir(id), 'upload');
  }

  async write(id: string, source: Readable, options: { signal?: AbortSignal } = {}): Promise<void> {
    await fs.mkdir(this.dir(id), { recursive: true });
    const target = this.file(id);
    try {
      // Answered 202, it must survive a crash of the machine: fsynced on its own descriptor before
      // that is closed (`flush`), rather than opened again for it.
      await pipeline(source, createWriteStream(target, { flush: true }), options.signal ? { signal: options.signal } : {});
    } catch (error) {
      await this.remove(id);
      throw error;
    }
  }

  async exists(id: string): Promise<boolean> {
    return (await this.size(id)) !== undefined;
  }

  async size(id: string): Promise<number | undefined> {
    return (await this.stat(id))?.bytes;
  }

  async stat(id: string): Promise<Omit<StagedEntry, 'id'> | undefined> {
    try {
      const stat = await fs.stat(this.file(id));
      return { bytes: stat.size, modifiedAt: stat.mtime };
    } catch {
      return undefined;
    }
  }

  async head(id: string, bytes: number): Promise<Buffer | undefined> {
    const handle = await fs.open(this.file(id), 'r').catch((error) => {
      if (gone(error)) return undefined;
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

  read(id: string): Readable {
    return createReadStream(this.file(id));
  }

  async move(from: string, to: string): Promise<void> {
    await fs.mkdir(this.dir(to), { recursive: true });
    await fs.rename(this.file(from), this.file(to));
    await fsyncPath(this.dir(to));
    await this.remove(from);
  }

  /**
   * Removes the entry's directory. The usual case (the one file, then the directory) takes two
   * calls; anything else there falls back to a recursive removal, which costs several per entry.
   */
  async remove(id: string): Promise<void> {
    assertName(id);
    const dir = path.join(this.root, id);
    try {
      await fs.unlink(path.join(dir, 'upload')).catch((error) => {
        if (!gone(error)) throw error;
      });
      await fs.rmdir(dir).catch((error) => {
        if (!gone(error)) throw error;
      });
    } catch {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async removeMany(ids: readonly string[]): Promise<void> {
    // A few at a time: an import's thousands of entries must not queue thousands of file operations at once.
    for (let i = 0; i < ids.length; i += REMOVE_AT_ONCE) await Promise.all(ids.slice(i, i + REMOVE_AT_ONCE).map((id) => this.remove(id)));
  }

  async list(): Promise<string[]> {
    return (await this.entries()).map((entry) => entry.id);
  }

  async entries(): Promise<StagedEntry[]> {
    const names = await fs.readdir(this.root).catch(() => [] as string[]);
    const entries: StagedEntry[] = [];
    for (const name of names) {
      const stat = await fs.stat(path.join(this.root, name)).catch(() => undefined);
      if (!stat) continue;
      const file = await fs.stat(path.join(this.root, name, 'upload')).catch(() => undefined);
      entries.push({ id: name, bytes: file?.size ?? (stat.isFile() ? stat.size : 0), modifiedAt: file?.mtime ?? stat.mtime });
    }
    return entries;
  }

  async withFile<T>(id: string, use: (file: string) => Promise<T>): Promise<T> {
    return use(this.file(id));
  }

  writtenFile(id: string): string {
    return this.file(id);
  }
}

/**
 * Objects `<prefix>staging/<id>` in the bucket the blobs live in: the API streams an upload there
 * (a multipart upload when it is large, so memory stays bounded) and a worker on any host reads it.
 */
export class S3Staging implements Staging {
  readonly kind = 's3';
  constructor(
    private readonly objects: S3Objects,
    private readonly scratchDir: string,
  ) {}

  private name(id: string): string {
    assertId(id);
    return `staging/${id}`;
  }

  async write(id: string, source: Readable, options: { signal?: AbortSignal } = {}): Promise<void> {
    const name = this.name(id);
    const onAbort = () => source.destroy(options.signal?.reason ?? new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      await this.objects.put(name, source);
    } catch (error) {
      // A single put is sent only once the body ended and a multipart upload is aborted: nothing to
      // remove, except an earlier entry under the same id.
      await this.objects.delete(name).catch(() => {});
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async exists(id: string): Promise<boolean> {
    return (await this.objects.head(this.name(id))) !== undefined;
  }

  async size(id: string): Promise<number | undefined> {
    return (await this.objects.head(this.name(id)))?.size;
  }

  async stat(id: string): Promise<Omit<StagedEntry, 'id'> | undefined> {
    const head = await this.objects.head(this.name(id));
    return head && { bytes: head.size, modifiedAt: head.modifiedAt };
  }

  async head(id: string, bytes: number): Promise<Buffer | undefined> {
    if (bytes <= 0) return (await this.exists(id)) ? Buffer.alloc(0) : undefined;
    return this.objects.readStart(this.name(id), bytes);
  }

  read(id: string): Readable {
    return this.objects.read(this.name(id), undefined, () => missing(id));
  }

  async move(from: string, to: string): Promise<void> {
    await this.objects.put(this.name(to), this.read(from));
    await this.remove(from);
  }

  async remove(id: string): Promise<void> {
    assertName(id);
    await this.objects.delete(`staging/${id}`);
  }

  async removeMany(ids: readonly string[]): Promise<void> {
    for (const id of ids) assertName(id);
    await this.objects.deleteMany(ids.map((id) => `staging/${id}`));
  }

  async list(): Promise<string[]> {
    return (await this.entries()).map((entry) => entry.id);
  }

  async entries(): Promise<StagedEntry[]> {
    const entries: StagedEntry[] = [];
    for await (const object of this.objects.list('staging/')) {
      entries.push({ id: object.name.slice('staging/'.length), bytes: object.size, modifiedAt: object.modifiedAt });
    }
    return entries;
  }

  /** A copy in a file of its own in scratch (no directory per use: one file to make and unlink). */
  async withFile<T>(id: string, use: (file: string) => Promise<T>): Promise<T> {
    await fs.mkdir(this.scratchDir, { recursive: true });
    const file = path.join(this.scratchDir, `staged-${randomUUID()}`);
    try {
      await pipeline(this.read(id), createWriteStream(file, { flags: 'wx' }));
      return await use(file);
    } finally {
      await fs.unlink(file).catch((error) => {
        if (!gone(error)) throw error;
      });
    }
  }

  writtenFile(): undefined {
    return undefined;
  }
}

function missing(id: string): Error {
  return Object.assign(new Error(`The staged upload ${id} is not there any more.`), { code: 'ENOENT' });
}

/**
 * Pipes `source` through `meter` (which counts, hashes and may refuse) into the staging entry. When
 * both fail, the meter's own refusal wins over the write's, and a write that failed on its own (the
 * object store out of reach) wins over the premature close it caused upstream.
 */
export async function stageThrough(staging: Staging, id: string, source: Readable, meter: Transform, options: { signal?: AbortSignal } = {}): Promise<void> {
  const piping = pipeline(source, meter, options.signal ? { signal: options.signal } : {});
  const writing = staging.write(id, meter, options);
  const [piped, written] = await Promise.allSettled([piping, writing]);
  const prematureClose = (error: unknown) => (error as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
  if (piped.status === 'rejected' && !(written.status === 'rejected' && prematureClose(piped.reason))) {
    if (written.status === 'fulfilled') await staging.remove(id).catch(() => {});
    throw piped.reason;
  }
  if (written.status === 'rejected') throw written.reason;
}
