import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobMismatchError, BlobMissingError, type BlobStore } from '../src/storage/blobStore.js';
import { LocalBlobStore } from '../src/storage/localBlobStore.js';
import { S3BlobStore } from '../src/storage/s3BlobStore.js';
import { ensureBucket } from '../src/storage/s3Client.js';
import { S3Objects } from '../src/storage/s3Objects.js';
import { LocalStaging, S3Staging, type Staging } from '../src/storage/staging.js';
import { S3_SKIP_REASON, S3_TESTS_OFF, type S3Server, startS3Server } from './helpers/s3.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const blobOf = (bytes: Buffer) => ({ bytes, promised: { sha256: sha256(bytes), size: bytes.length } });
const readAll = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};
/** A stream that sends the first half of `bytes`, then fails like a connection cut halfway. */
const cutHalfway = (bytes: Buffer) =>
  Readable.from(
    (async function* () {
      yield bytes.subarray(0, bytes.length >> 2);
      yield bytes.subarray(bytes.length >> 2, bytes.length >> 1);
      throw new Error('connection reset by the client');
    })(),
  );
/** Big enough to go through a multipart upload on S3. */
const LARGE = 20 * 1024 * 1024;

interface Backend {
  blobs: BlobStore;
  staging: Staging;
  /** Nothing half-written is left where the backend keeps unfinished puts. */
  leftovers(): Promise<number>;
  close(): Promise<void>;
}

async function localBackend(): Promise<Backend> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-blobs-'));
  const blobs = new LocalBlobStore(path.join(root, 'blobs'));
  return {
    blobs,
    staging: new LocalStaging(path.join(root, 'staging')),
    leftovers: async () => (await fs.readdir(path.join(root, 'blobs', 'tmp')).catch(() => [])).length,
    close: () => fs.rm(root, { recursive: true, force: true }),
  };
}

let server: S3Server | undefined;
async function s3Backend(): Promise<Backend> {
  server ??= await startS3Server();
  const objects = new S3Objects(server.settings);
  await ensureBucket(objects.client, server.settings.bucket);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-s3scratch-'));
  return {
    blobs: new S3BlobStore(objects, scratch),
    staging: new S3Staging(objects, scratch),
    leftovers: async () => {
      const open = await objects.client.send(new ListMultipartUploadsCommand({ Bucket: server?.settings.bucket }));
      return (open.Uploads ?? []).length + (await fs.readdir(scratch)).length;
    },
    close: async () => {
      objects.close();
      await fs.rm(scratch, { recursive: true, force: true });
    },
  };
}

afterAll(async () => {
  await server?.stop();
});

const BACKENDS: { name: string; open: () => Promise<Backend>; skip?: string }[] = [
  { name: 'local', open: localBackend },
  { name: 's3 (Ceph RGW)', open: s3Backend, skip: S3_TESTS_OFF ? S3_SKIP_REASON : undefined },
];

for (const backend of BACKENDS) {
  describe.skipIf(!!backend.skip)(`blob store contract: ${backend.name} (the S3 run is skipped only when S3_TESTS=off)`, () => {
    let b: Backend;
    beforeAll(async () => {
      b = await backend.open();
    }, 180_000);
    afterAll(async () => {
      await b?.close();
    });

    it('stores content under its sha256 and gives the same bytes back; a second put of the same content creates nothing', async () => {
      const { bytes, promised } = blobOf(randomBytes(5000));
      expect(await b.blobs.put(Readable.from([bytes]), promised)).toEqual({ created: true });
      expect(await readAll(b.blobs.read(promised.sha256))).toEqual(bytes);
      expect(await b.blobs.head(promised.sha256)).toMatchObject({ size: 5000 });
      expect(await b.blobs.size(promised.sha256)).toBe(5000);
      expect(await b.blobs.verify(promised.sha256)).toBe(true);
      expect(await b.blobs.put(Readable.from([bytes]), promised)).toEqual({ created: false });
    });

    it('never overwrites an existing blob: a put under a taken name keeps the first bytes', async () => {
      const { bytes, promised } = blobOf(randomBytes(3000));
      await b.blobs.put(Readable.from([bytes]), promised);
      const before = await b.blobs.head(promised.sha256);
      // Other bytes promised under the same name: refused without touching what is stored.
      const other = randomBytes(3000);
      expect(await b.blobs.put(Readable.from([other]), promised)).toEqual({ created: false });
      expect(await readAll(b.blobs.read(promised.sha256))).toEqual(bytes);
      expect((await b.blobs.head(promised.sha256))?.modifiedAt).toEqual(before?.modifiedAt);
    });

    it('reads byte ranges', async () => {
      const { bytes, promised } = blobOf(randomBytes(10_000));
      await b.blobs.put(Readable.from([bytes]), promised);
      expect(await readAll(b.blobs.read(promised.sha256, { start: 100, end: 199 }))).toEqual(bytes.subarray(100, 200));
      expect(await readAll(b.blobs.read(promised.sha256, { start: 9990, end: 9999 }))).toEqual(bytes.subarray(9990));
    });

    it('detects integrity failures (wrong sha256, too many or too few bytes) and leaves nothing visible', async () => {
      for (const size of [4000, LARGE]) {
        const bytes = randomBytes(size);
        const wrongHash = { sha256: sha256(randomBytes(10)), size };
        await expect(b.blobs.put(Readable.from([bytes]), wrongHash)).rejects.toBeInstanceOf(BlobMismatchError);
        expect(await b.blobs.has(wrongHash.sha256)).toBe(false);
        const short = { sha256: sha256(bytes), size: size - 1 };
        await expect(b.blobs.put(Readable.from([bytes]), short)).rejects.toBeInstanceOf(BlobMismatchError);
        const long = { sha256: sha256(bytes), size: size + 1 };
        await expect(b.blobs.put(Readable.from([bytes]), long)).rejects.toBeInstanceOf(BlobMismatchError);
        expect(await b.blobs.has(sha256(bytes))).toBe(false);
      }
      expect(await b.leftovers()).toBe(0);
    });

    it('a put interrupted halfway (small or multipart) leaves nothing visible and nothing half-written', async () => {
      for (const size of [6000, LARGE]) {
        const { bytes, promised } = blobOf(randomBytes(size));
        await expect(b.blobs.put(cutHalfway(bytes), promised)).rejects.toThrow(/connection reset/);
        expect(await b.blobs.has(promised.sha256)).toBe(false);
        await expect(readAll(b.blobs.read(promised.sha256))).rejects.toBeInstanceOf(BlobMissingError);
      }
      expect(await b.leftovers()).toBe(0);
    });

    it('stores a large blob (multipart on S3) and reads it back whole and in ranges', async () => {
      const { bytes, promised } = blobOf(randomBytes(LARGE + 12345));
      expect(await b.blobs.put(Readable.from([bytes.subarray(0, 1 << 20), bytes.subarray(1 << 20)]), promised)).toEqual({ created: true });
      expect(await b.blobs.size(promised.sha256)).toBe(bytes.length);
      expect(sha256(await readAll(b.blobs.read(promised.sha256)))).toBe(promised.sha256);
      expect(await readAll(b.blobs.read(promised.sha256, { start: LARGE, end: LARGE + 99 }))).toEqual(bytes.subarray(LARGE, LARGE + 100));
    });

    it('lists blobs, all or by hash prefix', async () => {
      const put = await Promise.all(
        [1, 2, 3].map(async () => {
          const { bytes, promised } = blobOf(randomBytes(100));
          await b.blobs.put(Readable.from([bytes]), promised);
          return promised.sha256;
        }),
      );
      const all: string[] = [];
      for await (const blob of b.blobs.list()) all.push(blob.sha256);
      expect(all).toEqual(expect.arrayContaining(put));
      const first = put[0] as string;
      const byPrefix: { sha256: string; size: number }[] = [];
      for await (const blob of b.blobs.list(first.slice(0, 3))) byPrefix.push(blob);
      expect(byPrefix.map((x) => x.sha256)).toContain(first);
      expect(byPrefix.every((x) => x.sha256.startsWith(first.slice(0, 3)))).toBe(true);
      expect(byPrefix.find((x) => x.sha256 === first)?.size).toBe(100);
    });

    it('deletes: the blob is gone from head, read and the listing; deleting again is harmless', async () => {
      const { bytes, promised } = blobOf(randomBytes(700));
      await b.blobs.put(Readable.from([bytes]), promised);
      await b.blobs.delete(promised.sha256);
      expect(await b.blobs.head(promised.sha256)).toBeUndefined();
      await expect(readAll(b.blobs.read(promised.sha256))).rejects.toBeInstanceOf(BlobMissingError);
      const listed: string[] = [];
      for await (const blob of b.blobs.list(promised.sha256.slice(0, 4))) listed.push(blob.sha256);
      expect(listed).not.toContain(promised.sha256);
      await b.blobs.delete(promised.sha256);
      expect(await b.blobs.verify(promised.sha256)).toBe(false);
    });

    it('concurrent puts of the same content all succeed and leave one intact blob', async () => {
      for (const size of [2000, LARGE]) {
        const { bytes, promised } = blobOf(randomBytes(size));
        const results = await Promise.all(Array.from({ length: 4 }, () => b.blobs.put(Readable.from([bytes]), promised)));
        expect(results.some((r) => r.created)).toBe(true);
        expect(await b.blobs.verify(promised.sha256)).toBe(true);
      }
      expect(await b.leftovers()).toBe(0);
    });

    it('lends a file holding the blob and takes its copy back afterwards', async () => {
      const { bytes, promised } = blobOf(randomBytes(4321));
      await b.blobs.put(Readable.from([bytes]), promised);
      let lent = '';
      const read = await b.blobs.withFile(promised.sha256, async (file) => {
        lent = file;
        return fs.readFile(file);
      });
      expect(read).toEqual(bytes);
      if (b.blobs.kind === 's3') expect(await fs.stat(lent).catch(() => undefined)).toBeUndefined();
      expect(await b.leftovers()).toBe(0);
    });

    it('putFile stores a file the caller wrote, and with move takes it over', async () => {
      const { bytes, promised } = blobOf(randomBytes(999));
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-putfile-'));
      const file = path.join(dir, 'out.part');
      await fs.writeFile(file, bytes);
      await b.blobs.putFile(file, promised, { move: true });
      expect(await fs.stat(file).catch(() => undefined)).toBeUndefined();
      expect(await readAll(b.blobs.read(promised.sha256))).toEqual(bytes);
      await fs.rm(dir, { recursive: true });
    });

    it('putFile of a file its caller hashed: stored when its size is the promised one, refused with nothing visible when not', async () => {
      const { bytes, promised } = blobOf(randomBytes(1234));
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-putfile-'));
      const short = path.join(dir, 'short.part');
      await fs.writeFile(short, bytes.subarray(0, 1000));
      await expect(b.blobs.putFile(short, promised, { move: true, hashed: true })).rejects.toBeInstanceOf(BlobMismatchError);
      expect(await b.blobs.has(promised.sha256)).toBe(false);
      expect(await fs.stat(short).catch(() => undefined)).toBeUndefined();
      const whole = path.join(dir, 'whole.part');
      await fs.writeFile(whole, bytes);
      expect(await b.blobs.putFile(whole, promised, { move: true, hashed: true })).toEqual({ created: true });
      expect(await readAll(b.blobs.read(promised.sha256))).toEqual(bytes);
      expect(await b.leftovers()).toBe(0);
      await fs.rm(dir, { recursive: true });
    });

    it('staging: write, head, read, move, list and remove an entry', async () => {
      const id = '0b6d1a9e-1c2f-4e3a-9b8c-7d6e5f4a3b2c';
      const other = '1b6d1a9e-1c2f-4e3a-9b8c-7d6e5f4a3b2c';
      const bytes = randomBytes(LARGE + 1000);
      await b.staging.write(id, Readable.from([bytes]));
      expect(await b.staging.size(id)).toBe(bytes.length);
      expect(await b.staging.head(id, 4)).toEqual(bytes.subarray(0, 4));
      await b.staging.move(id, other);
      expect(await b.staging.exists(id)).toBe(false);
      expect(sha256(await readAll(b.staging.read(other)))).toBe(sha256(bytes));
      expect(await b.staging.list()).toContain(other);
      expect((await b.staging.entries()).find((e) => e.id === other)?.bytes).toBe(bytes.length);
      const viaFile = await b.staging.withFile(other, async (file) => (await fs.stat(file)).size);
      expect(viaFile).toBe(bytes.length);
      await b.staging.remove(other);
      expect(await b.staging.head(other, 4)).toBeUndefined();
      // A write cut halfway leaves no entry.
      await expect(b.staging.write(id, cutHalfway(bytes))).rejects.toThrow(/connection reset/);
      expect(await b.staging.exists(id)).toBe(false);
      expect(await b.leftovers()).toBe(0);
    });

    it('staging: head of an entry shorter than asked and of an empty one; removeMany takes many, gone ones included', async () => {
      const ids = ['2b6d1a9e-1c2f-4e3a-9b8c-7d6e5f4a3b2c', '3b6d1a9e-1c2f-4e3a-9b8c-7d6e5f4a3b2c', '4b6d1a9e-1c2f-4e3a-9b8c-7d6e5f4a3b2c'];
      await b.staging.write(ids[0] as string, Readable.from([Buffer.from('ab')]));
      await b.staging.write(ids[1] as string, Readable.from([]));
      expect(await b.staging.head(ids[0] as string, 4)).toEqual(Buffer.from('ab'));
      expect(await b.staging.head(ids[1] as string, 4)).toEqual(Buffer.alloc(0));
      // ids[2] was never written: removing it too is harmless.
      await b.staging.removeMany(ids);
      for (const id of ids) expect(await b.staging.exists(id)).toBe(false);
      expect(await b.staging.list()).not.toContain(ids[0]);
      await b.staging.removeMany([]);
    });
  });
}

describe('local blob store', () => {
  it('removes the empty ab/cd directories when the last blob in them is deleted, and keeps them while others remain', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-local-'));
    try {
      const store = new LocalBlobStore(root);
      const { bytes, promised } = blobOf(randomBytes(64));
      await store.put(Readable.from([bytes]), promised);
      const file = store.pathOf(promised.sha256);
      const cd = path.dirname(file);
      const ab = path.dirname(cd);
      // A neighbour under the same ab/ but another cd/ keeps ab/ alive.
      const neighbour = path.join(ab, 'zz');
      await fs.mkdir(neighbour);
      await store.delete(promised.sha256);
      expect(await fs.stat(cd).catch(() => undefined)).toBeUndefined();
      expect((await fs.stat(ab)).isDirectory()).toBe(true);
      await fs.rmdir(neighbour);
      await store.put(Readable.from([bytes]), promised);
      await store.delete(promised.sha256);
      expect(await fs.stat(ab).catch(() => undefined)).toBeUndefined();
      expect((await fs.stat(path.join(root, 'sha256'))).isDirectory()).toBe(true);
      // A put after the directories went makes them again.
      await store.put(Readable.from([bytes]), promised);
      expect(await store.verify(promised.sha256)).toBe(true);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('verify finds a blob whose file was damaged', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mv-local-'));
    try {
      const store = new LocalBlobStore(root);
      const { bytes, promised } = blobOf(randomBytes(256));
      await store.put(Readable.from([bytes]), promised);
      await fs.chmod(store.pathOf(promised.sha256), 0o644);
      await fs.writeFile(store.pathOf(promised.sha256), randomBytes(256));
      expect(await store.verify(promised.sha256)).toBe(false);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});

describe.skipIf(S3_TESTS_OFF)('s3 blob store (skipped only when S3_TESTS=off)', () => {
  it('answers a presigned GET with the blob, its disposition and type, and refuses it once tampered with', async () => {
    server ??= await startS3Server();
    const objects = new S3Objects(server.settings);
    await ensureBucket(objects.client, server.settings.bucket);
    const store = new S3BlobStore(objects, os.tmpdir());
    const { bytes, promised } = blobOf(randomBytes(1234));
    await store.put(Readable.from([bytes]), promised);
    const url = await store.presignGet(promised.sha256, {
      expiresInSeconds: 60,
      contentDisposition: 'attachment; filename="1crn.pdb"',
      contentType: 'chemical/x-pdb',
    });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="1crn.pdb"');
    expect(response.headers.get('content-type')).toBe('chemical/x-pdb');
    expect(Buffer.from(await response.arrayBuffer())).toEqual(bytes);
    const tampered = await fetch(url.replace('X-Amz-Expires=60', 'X-Amz-Expires=6000'));
    expect(tampered.status).toBe(403);
    await tampered.arrayBuffer();
    objects.close();
  });

  it('finds out once that the server refuses a conditional put onto an existing key (RGW does), and leaves no probe object behind', async () => {
    server ??= await startS3Server();
    const objects = new S3Objects(server.settings);
    try {
      await ensureBucket(objects.client, server.settings.bucket);
      const [first, second] = await Promise.all([objects.conditionalPutsHonoured(), objects.conditionalPutsHonoured()]);
      expect(first).toBe(true);
      expect(second).toBe(true);
      const probes: string[] = [];
      for await (const object of objects.list('probes/')) probes.push(object.name);
      expect(probes).toEqual([]);
    } finally {
      objects.close();
    }
  });

  it('maps the store being out of reach to StoreUnavailableError naming what was being done', async () => {
    const objects = new S3Objects({ ...(server as S3Server).settings, endpoint: 'http://127.0.0.1:1' });
    const store = new S3BlobStore(objects, os.tmpdir());
    await expect(store.head('a'.repeat(64))).rejects.toMatchObject({ code: 'storage_unavailable', status: 503 });
    objects.close();
  });
});
