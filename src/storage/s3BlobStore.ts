import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertHash,
  type BlobHead,
  BlobMismatchError,
  BlobMissingError,
  type BlobStore,
  type ByteRange,
  isSha256,
  type ListedBlob,
  type PresignOptions,
  type PromisedBlob,
  type PutFileOptions,
  promiseChecker,
  sha256Of,
} from './blobStore.js';
import type { S3Objects } from './s3Objects.js';

/** Below this a blob is read into memory, checked, and sent in one PutObject whose signature covers its hash. */
const SMALL_BLOB_BYTES = 8 * 1024 * 1024;

/**
 * Blobs as objects `<prefix>blobs/sha256/<hash>` in an S3 bucket. A put is checked against its
 * promise while it streams and becomes visible only if the promise held (a small blob is checked in
 * memory before it is sent; a large one is a multipart upload completed only after its last byte
 * was checked, and aborted otherwise). An existing blob is never overwritten: `If-None-Match: *` on the put
 * where the server honours it (S3Objects.conditionalPutsHonoured), with a head first where it does
 * not and before every multipart put. Two writers of the same content may
 * both complete a multipart upload on a server that ignores the condition there (RGW): both wrote
 * the same verified bytes under the same name, so nothing changes.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  constructor(
    private readonly objects: S3Objects,
    /** Where `withFile` streams copies (one directory per use, removed afterwards). */
    private readonly scratchDir: string,
  ) {}

  private name(sha256: string): string {
    assertHash(sha256);
    return `blobs/sha256/${sha256}`;
  }

  async put(source: Readable, promised: PromisedBlob): Promise<{ created: boolean }> {
    const name = this.name(promised.sha256);
    const small = promised.size <= SMALL_BLOB_BYTES;
    // A small blob on a server that honours the condition goes out in one request: the put itself
    // says whether the blob was there. A large one is looked for first, so existing bytes are not sent again.
    if (!(small && (await this.objects.conditionalPutsHonoured())) && (await this.has(promised.sha256))) {
      source.resume();
      return { created: false };
    }
    const checked = promiseChecker(promised);
    if (small) {
      const chunks: Buffer[] = [];
      try {
        await pipeline(source, checked, async (stream: AsyncIterable<Buffer>) => {
          for await (const chunk of stream) chunks.push(chunk);
        });
      } catch (error) {
        // As where the server was asked first: a blob already stored under the name wins over bytes that break the promise.
        if (error instanceof BlobMismatchError && (await this.has(promised.sha256))) return { created: false };
        throw error;
      }
      return this.objects.putBuffer(name, Buffer.concat(chunks), { ifNoneMatch: true });
    }
    source.once('error', (error) => checked.destroy(error));
    const result = await this.objects.put(name, source.pipe(checked), { ifNoneMatch: true, size: promised.size });
    return result;
  }

  /** The bytes are read to be sent anyway, and checked as they go: `hashed` and `durable` change nothing here. */
  async putFile(file: string, promised: PromisedBlob, options: PutFileOptions = {}): Promise<{ created: boolean }> {
    try {
      return await this.put(createReadStream(file), promised);
    } finally {
      if (options.move)
        await fs.unlink(file).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
    }
  }

  read(sha256: string, range?: ByteRange): Readable {
    return this.objects.read(this.name(sha256), range, () => new BlobMissingError(sha256));
  }

  async head(sha256: string): Promise<BlobHead | undefined> {
    return this.objects.head(this.name(sha256));
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.head(sha256)) !== undefined;
  }

  async size(sha256: string): Promise<number | undefined> {
    return (await this.head(sha256))?.size;
  }

  async delete(sha256: string): Promise<void> {
    await this.objects.delete(this.name(sha256));
  }

  async *list(prefix = ''): AsyncIterable<ListedBlob> {
    for await (const object of this.objects.list(`blobs/sha256/${prefix}`)) {
      const sha256 = object.name.slice('blobs/sha256/'.length);
      if (isSha256(sha256)) yield { sha256, size: object.size, modifiedAt: object.modifiedAt };
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

  /** Streams the blob into a scratch directory of its own, checked against its name and size on the way. */
  async withFile<T>(sha256: string, use: (file: string) => Promise<T>): Promise<T> {
    const head = await this.head(sha256);
    if (!head) throw new BlobMissingError(sha256);
    await fs.mkdir(this.scratchDir, { recursive: true });
    const dir = await fs.mkdtemp(path.join(this.scratchDir, 'blob-'));
    try {
      const file = path.join(dir, `${randomUUID()}`);
      await pipeline(this.read(sha256), promiseChecker({ sha256, size: head.size }), createWriteStream(file, { flags: 'wx' }));
      return await use(file);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  location(sha256: string): string {
    return `s3://${this.objects.settings.bucket}/${this.objects.key(this.name(sha256))}`;
  }

  async presignGet(sha256: string, options: PresignOptions): Promise<string> {
    const query: Record<string, string> = {};
    if (options.contentDisposition) query['response-content-disposition'] = options.contentDisposition;
    if (options.contentType) query['response-content-type'] = options.contentType;
    return this.objects.presign(this.name(sha256), options.expiresInSeconds, query);
  }

  async close(): Promise<void> {
    this.objects.close();
  }
}
