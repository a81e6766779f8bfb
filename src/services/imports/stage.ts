import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { sniffCompression } from '../../formats/sniff.js';
import type { Compression } from '../../formats/types.js';
import { type Staging, stageThrough } from '../../storage/staging.js';

export interface StagedFile {
  bytes: number;
  /** sha256 of the bytes as staged. */
  sha256: string;
  /** With `discardPastMax`: the stream went past maxBytes, was read to its end and nothing was kept. */
  overflowed?: boolean;
  /** The compression the first bytes show ('none' for plain bytes), so a worker need not read them again. */
  compression: StagedCompression;
}

export type StagedCompression = Compression | 'none';

const SNIFFED_BYTES = 4;

/**
 * An item's staged compression: as recorded when it was staged, else read from its first bytes
 * (items staged before it was recorded); undefined when its entry is gone.
 */
export async function stagedCompressionOf(staging: Staging, id: string, recorded: string | null): Promise<StagedCompression | undefined> {
  if (recorded) return recorded as StagedCompression;
  const head = await staging.head(id, SNIFFED_BYTES);
  return head === undefined ? undefined : (sniffCompression(head) ?? 'none');
}

/** A refusal while a stream is staged; `reason` says which limit. */
export class StagingLimitError extends Error {
  constructor(
    readonly reason: 'file_too_large' | 'batch_too_large',
    message: string,
  ) {
    super(message);
    this.name = 'StagingLimitError';
  }
}

/**
 * Streams `source` into staging under `id` (DATA_DIR/staging/<id>/upload, or the object store's staging area), counting and hashing,
 * never holding more than a chunk in memory; fsynced before it returns. `onBytes` sees the running
 * count and may refuse (throw) or wait (e.g. for quota) before a chunk is written. On any error
 * the entry is removed.
 */
export async function stageStream(
  staging: Staging,
  id: string,
  source: Readable,
  options: {
    maxBytes: number;
    tooLarge: () => Error;
    /** Past maxBytes, read the rest and keep nothing instead of failing (one file of many, in a request that must go on). */
    discardPastMax?: boolean;
    onBytes?: (bytes: number) => Promise<void> | void;
    signal?: AbortSignal;
  },
): Promise<StagedFile> {
  const hash = createHash('sha256');
  /** The first bytes, as many as sniffCompression looks at. */
  let start = Buffer.alloc(0);
  let bytes = 0;
  let overflowed = false;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (overflowed) {
        callback();
        return;
      }
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        if (!options.discardPastMax) {
          callback(options.tooLarge());
          return;
        }
        overflowed = true;
        callback();
        return;
      }
      const pass = () => {
        if (start.length < SNIFFED_BYTES) start = Buffer.concat([start, chunk.subarray(0, SNIFFED_BYTES - start.length)]);
        hash.update(chunk);
        callback(null, chunk);
      };
      if (!options.onBytes) return pass();
      let waiting: Promise<void> | void;
      try {
        waiting = options.onBytes(bytes);
      } catch (error) {
        callback(error as Error);
        return;
      }
      if (waiting) waiting.then(pass, (error) => callback(error));
      else pass();
    },
  });
  try {
    await stageThrough(staging, id, source, meter, { signal: options.signal });
  } catch (error) {
    await staging.remove(id);
    throw error;
  }
  if (overflowed) {
    await staging.remove(id);
    return { bytes, sha256: '', overflowed, compression: 'none' };
  }
  return { bytes, sha256: hash.digest('hex'), compression: sniffCompression(start) ?? 'none' };
}
