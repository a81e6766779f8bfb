import { randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ByteRange } from './blobStore.js';
import { createS3Client, isConditionFailed, isNotFound, mapS3Error, presignGetUrl, type S3Settings, statusOf } from './s3Client.js';

/**
 * Parts of a multipart upload: the smallest S3 allows, since every part in flight (and the one being
 * filled) is held in memory while an upload streams through the API. An object whose size is known
 * gets larger parts when it needs them to stay within S3's 10,000 parts; one of unknown size can
 * reach MAX_PARTS × PART_BYTES (about 48 GiB).
 */
const PART_BYTES = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Parts in flight per upload. */
const PART_QUEUE = 3;
/** Keys one DeleteObjects request takes at most (S3's limit). */
const DELETE_BATCH = 1000;

/** The part size for an object of `size` bytes (when known). */
function partSizeFor(size: number | undefined): number {
  if (size === undefined) return PART_BYTES;
  return Math.max(PART_BYTES, Math.ceil(size / (MAX_PARTS - 1) / (1024 * 1024)) * 1024 * 1024);
}

export interface ObjectHead {
  size: number;
  modifiedAt: Date;
}

/** The few S3 operations the blob store and staging share, on keys under the installation's prefix. */
export class S3Objects {
  readonly client: S3Client;
  constructor(readonly settings: S3Settings) {
    this.client = createS3Client(settings);
  }

  key(name: string): string {
    return `${this.settings.prefix}${name}`;
  }

  private conditionalPuts?: Promise<boolean>;

  /**
   * Whether the server refuses a PutObject with `If-None-Match: *` onto an existing key (AWS since
   * 2024, Ceph RGW, MinIO do; some servers ignore the header and overwrite). Found out once per
   * process by putting a probe object twice, then removing it; a probe that fails answers false
   * (callers then head first) and is tried again next time.
   */
  conditionalPutsHonoured(): Promise<boolean> {
    this.conditionalPuts ??= this.probeConditionalPuts().catch(() => {
      this.conditionalPuts = undefined;
      return false;
    });
    return this.conditionalPuts;
  }

  private async probeConditionalPuts(): Promise<boolean> {
    const name = `probes/conditional-put-${randomUUID()}`;
    try {
      await this.putBuffer(name, Buffer.from('1'), { ifNoneMatch: true });
      return !(await this.putBuffer(name, Buffer.from('2'), { ifNoneMatch: true })).created;
    } finally {
      await this.delete(name).catch(() => {});
    }
  }

  /**
   * Streams `body` to `name`: one PutObject below a part's size, a multipart upload above it
   * (lib-storage). The object becomes visible only when `body` ends cleanly: a body that fails (a
   * broken connection, a promise not kept) aborts the multipart upload, and a single put is sent
   * only once the whole body has been read. With `ifNoneMatch`, an existing object is kept:
   * `{ created: false }` (RGW ignores the condition on CompleteMultipartUpload, so callers head first).
   */
  async put(name: string, body: Readable, options: { ifNoneMatch?: boolean; contentType?: string; size?: number } = {}): Promise<{ created: boolean }> {
    const upload = new Upload({
      client: this.client,
      partSize: partSizeFor(options.size),
      queueSize: PART_QUEUE,
      params: {
        Bucket: this.settings.bucket,
        Key: this.key(name),
        Body: body,
        ContentType: options.contentType ?? 'application/octet-stream',
        ...(options.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
      },
    });
    try {
      // RGW answers CompleteMultipartUpload with an empty ETag: nothing here reads it.
      await upload.done();
      return { created: true };
    } catch (error) {
      body.destroy();
      if (options.ifNoneMatch && isConditionFailed(error)) return { created: false };
      throw mapS3Error(error, `storing ${name}`);
    }
  }

  /** A small object from memory, in one request. */
  async putBuffer(name: string, data: Buffer, options: { ifNoneMatch?: boolean } = {}): Promise<{ created: boolean }> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.key(name),
          Body: data,
          ContentLength: data.length,
          ...(options.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return { created: true };
    } catch (error) {
      if (options.ifNoneMatch && isConditionFailed(error)) return { created: false };
      throw mapS3Error(error, `storing ${name}`);
    }
  }

  /** The object's bytes as a stream at once; `missing` makes the error when it does not exist. */
  read(name: string, range: ByteRange | undefined, missing: () => Error): Readable {
    const out = new PassThrough();
    const abort = new AbortController();
    out.once('close', () => abort.abort());
    this.client
      .send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(name), Range: range ? `bytes=${range.start}-${range.end}` : undefined }), {
        abortSignal: abort.signal,
      })
      .then(
        (result) => {
          const body = result.Body as Readable;
          body.once('error', (error) => out.destroy(mapS3Error(error, `reading ${name}`)));
          body.pipe(out);
        },
        (error) => {
          if (out.destroyed) return;
          out.destroy(isNotFound(error) ? missing() : mapS3Error(error, `reading ${name}`));
        },
      );
    return out;
  }

  /** The object's first `bytes` bytes (fewer when it is shorter) in one ranged GET, or undefined when it does not exist. */
  async readStart(name: string, bytes: number): Promise<Buffer | undefined> {
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(name), Range: `bytes=0-${bytes - 1}` }));
      return Buffer.from(await (result.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).subarray(0, bytes);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      // An empty object has no byte 0: the range cannot be satisfied.
      if (statusOf(error) === 416) return Buffer.alloc(0);
      throw mapS3Error(error, `reading ${name}`);
    }
  }

  async head(name: string): Promise<ObjectHead | undefined> {
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.key(name) }));
      return { size: result.ContentLength ?? 0, modifiedAt: result.LastModified ?? new Date(0) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw mapS3Error(error, `looking up ${name}`);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.key(name) }));
    } catch (error) {
      if (!isNotFound(error)) throw mapS3Error(error, `deleting ${name}`);
    }
  }

  /** Deletes the objects in requests of up to a thousand keys; keys already gone are fine. */
  async deleteMany(names: readonly string[]): Promise<void> {
    for (let start = 0; start < names.length; start += DELETE_BATCH) {
      const batch = names.slice(start, start + DELETE_BATCH);
      const result = await this.client
        .send(new DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch.map((name) => ({ Key: this.key(name) })), Quiet: true } }))
        .catch((error) => {
          throw mapS3Error(error, `deleting ${batch.length} objects`);
        });
      const failed = (result.Errors ?? []).filter((error) => error.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`The object store did not delete ${failed.length} object(s), e.g. ${failed[0]?.Key}: ${failed[0]?.Code}`);
    }
  }

  /** Objects whose names start with `namePrefix`, page by page (names without the installation prefix). */
  async *list(namePrefix: string): AsyncIterable<{ name: string; size: number; modifiedAt: Date }> {
    let token: string | undefined;
    const strip = this.settings.prefix.length;
    do {
      const page = await this.client
        .send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.key(namePrefix), ContinuationToken: token }))
        .catch((error) => {
          throw mapS3Error(error, `listing ${namePrefix}`);
        });
      for (const item of page.Contents ?? []) {
        if (item.Key) yield { name: item.Key.slice(strip), size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  presign(name: string, expiresInSeconds: number, query?: Record<string, string>): string {
    return presignGetUrl(this.settings, this.key(name), { expiresInSeconds, query });
  }

  close() {
    this.client.destroy();
  }
}
