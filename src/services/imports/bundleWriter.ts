import { Readable } from 'node:stream';
import type { Staging } from '../../storage/staging.js';
import type { ItemDraft } from './batches.js';
import { IMPORT_CHUNK_SIZE } from './chunk.js';
import { importBundleId } from './ids.js';

/**
 * Stages the small files of a multipart import as they arrive, one bundle per chunk of positions
 * (the chunk job that takes those positions reads it once: services/upload/bundles.ts). Files come
 * in position order, so a bundle is written as soon as a file of a later chunk arrives, and the
 * last one by `finish`, before the request is answered.
 */
export class BundleWriter {
  private open: { chunk: number; parts: Buffer[]; bytes: number; drafts: ItemDraft[] } | undefined;
  private readonly writes: Promise<void>[] = [];
  /** Every bundle written or being written, to remove when the request is refused. */
  readonly bundleIds: string[] = [];

  constructor(
    private readonly staging: Staging,
    private readonly batchId: string,
  ) {}

  /** Adds a whole small file; its draft records the bundle and offset. */
  add(draft: ItemDraft, bytes: Buffer): void {
    const chunk = Math.floor(draft.position / IMPORT_CHUNK_SIZE);
    if (this.open && this.open.chunk !== chunk) this.flush();
    this.open ??= { chunk, parts: [], bytes: 0, drafts: [] };
    draft.stagedBundle = importBundleId(this.batchId, chunk);
    draft.stagedOffset = this.open.bytes;
    this.open.parts.push(bytes);
    this.open.bytes += bytes.length;
    this.open.drafts.push(draft);
  }

  private flush(): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    const id = importBundleId(this.batchId, open.chunk);
    this.bundleIds.push(id);
    this.track(this.staging.write(id, Readable.from([Buffer.concat(open.parts)])));
  }

  /** Kept for `finish` to wait on; a failure is reported there, not as an unhandled rejection before it. */
  private track(write: Promise<void>): void {
    write.catch(() => {});
    this.writes.push(write);
  }

  /**
   * Writes the last bundle and waits for every write. A request of one file stages it as an entry
   * of its own instead (it may be an archive to unpack, which is staged under the batch's id).
   */
  async finish(options: { alone: boolean }): Promise<void> {
    const only = this.open?.drafts.length === 1 && this.bundleIds.length === 0 && options.alone ? this.open : undefined;
    if (only) {
      this.open = undefined;
      const draft = only.drafts[0] as ItemDraft;
      draft.stagedBundle = undefined;
      draft.stagedOffset = undefined;
      this.track(this.staging.write(draft.id, Readable.from([Buffer.concat(only.parts)])));
    }
    this.flush();
    const settled = await Promise.allSettled(this.writes);
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}
