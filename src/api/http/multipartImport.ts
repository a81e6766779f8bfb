import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Context } from 'koa';
import { sniffCompression } from '../../formats/sniff.js';
import { formatBytes } from '../../lib/bytes.js';
import type { AppContext } from '../../runtime/context.js';
import { classifyEntry } from '../../services/imports/archive.js';
import type { ItemDraft } from '../../services/imports/batches.js';
import { BundleWriter } from '../../services/imports/bundleWriter.js';
import { importItemId } from '../../services/imports/ids.js';
import { StagingLimitError, stageStream } from '../../services/imports/stage.js';
import { BUNDLED_FILE_MAX_BYTES, bundlesSmallFiles } from '../../services/upload/bundles.js';
import { ApiError } from '../errors.js';
import { multipartError, type QuotaHold } from './uploadBody.js';

/** Without a Content-Length, quota is reserved in steps of this size as the files arrive. */
const RESERVE_STEP_BYTES = 64 * 1024 * 1024;
/** While files stream in, the batch row is touched this often so cleanup never takes it for abandoned. */
const KEEPALIVE_MS = 60_000;

export interface ReceivedImport {
  fields: Record<string, string[]>;
  /** One per file part, in order: staged (pending) or not kept, with the reason. */
  items: ItemDraft[];
  /** Bundles of small files staged (their items record which), to remove with the items' entries. */
  bundleIds: string[];
  stagedBytes: number;
}

export interface ImportLimits {
  maxItems: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

/**
 * Streams every `file` part of a multipart import into staging, each under its item's id, one
 * after another as they arrive (never in memory). A part's file name may be a relative path
 * (`sub/dir/x.pdb`): it is kept as the item's name. Quota: the declared Content-Length was
 * reserved by the caller, else bytes are reserved as they arrive, and a refusal stops the request.
 * On any refusal every staged file is removed before the error propagates.
 */
export async function receiveImportFiles(
  koa: Context,
  app: AppContext,
  batchId: string,
  limits: ImportLimits,
  quota: QuotaHold & { reserved: number },
  keepAlive: () => Promise<void>,
): Promise<ReceivedImport> {
  const items: ItemDraft[] = [];
  const fields: Record<string, string[]> = {};
  // On an object store small files are staged in bundles, one per chunk of files (services/upload/bundles.ts).
  const bundler = bundlesSmallFiles(app.config.stagingBundles, app.staging) ? new BundleWriter(app.staging, batchId) : undefined;
  const pending: Promise<void>[] = [];
  let total = 0;
  let lastKeepAlive = Date.now();
  const onBytes = async (delta: number) => {
    total += delta;
    if (total > limits.maxTotalBytes) {
      throw new StagingLimitError('batch_too_large', `The files add up to more than the ${formatBytes(limits.maxTotalBytes)} one import accepts.`);
    }
    if (total > quota.reserved) quota.reserved = await quota.reserve(total, total + RESERVE_STEP_BYTES);
    if (Date.now() - lastKeepAlive > KEEPALIVE_MS) {
      lastKeepAlive = Date.now();
      await keepAlive();
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: koa.req.headers,
          // Browsers and fetch send file names as raw UTF-8; busboy's default (latin1) would garble every non-ASCII name.
          defParamCharset: 'utf8',
          preservePath: true,
          limits: { files: limits.maxItems, fields: 100, fieldSize: 1024 * 1024, parts: limits.maxItems + 100 },
        });
      } catch (error) {
        reject(new ApiError(400, 'invalid_multipart', `The multipart body cannot be read: ${(error as Error).message}`));
        return;
      }
      let failed = false;
      const fail = (error: unknown) => {
        if (failed) return;
        failed = true;
        koa.req.unpipe(parser);
        koa.req.resume();
        reject(error);
      };
      parser.on('field', (name, value) => {
        fields[name] = [...(fields[name] ?? []), value];
      });
      parser.on('file', (name, stream, info) => {
        if (name !== 'file' || failed) {
          stream.resume();
          return;
        }
        const position = items.length;
        const id = importItemId(batchId, position);
        const verdict = classifyEntry(info.filename || `file-${position + 1}`, 'file');
        if (verdict.kind !== 'file') {
          items.push({
            position,
            id,
            name: verdict.kind === 'skip' ? verdict.name : `file-${position + 1}`,
            state: 'skipped',
            error: verdict.kind === 'skip' ? verdict.reason : undefined,
          });
          stream.resume();
          return;
        }
        const draft: ItemDraft = { position, id, name: verdict.name, state: 'pending' };
        items.push(draft);
        let counted = 0;
        // Bytes counted once, whether they arrive while a small file is read or as it is staged after all.
        const count = (bytes: number) => {
          if (bytes <= counted) return;
          const delta = bytes - counted;
          counted = bytes;
          return onBytes(delta);
        };
        const staged = (bundler ? readSmall(stream, Math.min(BUNDLED_FILE_MAX_BYTES, limits.maxFileBytes), count) : Promise.resolve(undefined))
          .then(async (small) => {
            if (small?.whole && bundler) {
              bundler.add(draft, small.whole);
              draft.size = small.whole.length;
              draft.receivedSha256 = createHash('sha256').update(small.whole).digest('hex');
              draft.receivedCompression = sniffCompression(small.whole) ?? 'none';
              return undefined;
            }
            return stageStream(app.staging, id, small?.rest ?? stream, {
              maxBytes: limits.maxFileBytes,
              discardPastMax: true,
              tooLarge: () => new Error('unreachable'),
              onBytes: count,
            });
          })
          .then((file) => {
            if (!file) return;
            if (file.overflowed) {
              draft.state = 'rejected';
              draft.error = { code: 'file_too_large', message: `The file is larger than the ${formatBytes(limits.maxFileBytes)} this server accepts.` };
              return;
            }
            draft.size = file.bytes;
            draft.receivedSha256 = file.sha256;
            draft.receivedCompression = file.compression;
          });
        staged.catch(fail);
        pending.push(staged);
      });
      parser.on('filesLimit', () =>
        fail(new ApiError(413, 'too_many_items', `One import takes at most ${limits.maxItems} files; split the import.`, { maxItems: limits.maxItems })),
      );
      parser.on('partsLimit', () =>
        fail(new ApiError(413, 'too_many_items', `One import takes at most ${limits.maxItems} files; split the import.`, { maxItems: limits.maxItems })),
      );
      parser.on('error', (error) => fail(multipartError(error as Error)));
      parser.on('close', () => {
        if (failed) return;
        Promise.all(pending)
          .then(() => bundler?.finish({ alone: items.length === 1 }))
          .then(() => resolve(), fail);
      });
      koa.req.on('aborted', () => fail(new ApiError(400, 'upload_aborted', 'The upload was interrupted before it finished.')));
      koa.req.pipe(parser);
    });
  } catch (error) {
    await Promise.allSettled(pending);
    await bundler?.finish({ alone: false }).catch(() => {});
    for (const id of [...items.map((item) => item.id), ...(bundler?.bundleIds ?? [])]) await app.staging.remove(id);
    koa.set('Connection', 'close');
    if (error instanceof StagingLimitError) throw new ApiError(413, 'import_too_large', error.message, { maxBytes: limits.maxTotalBytes });
    throw error;
  }
  return {
    fields,
    items,
    bundleIds: bundler?.bundleIds ?? [],
    stagedBytes: items.reduce((sum, item) => sum + (item.state === 'pending' ? (item.size ?? 0) : 0), 0),
  };
}

/**
 * Reads a file part into memory while it stays within `max` bytes (counting them as they come):
 * `whole` when it ended there, else `rest`, a stream of everything (what was read, then the remainder).
 */
async function readSmall(stream: Readable, max: number, count: (bytes: number) => Promise<void> | void): Promise<{ whole?: Buffer; rest?: Readable }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const iterator = stream[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { whole: Buffer.concat(chunks) };
    const chunk = next.value as Buffer;
    chunks.push(chunk);
    bytes += chunk.length;
    await count(bytes);
    if (bytes > max) {
      return {
        rest: Readable.from(
          (async function* () {
            yield* chunks;
            for (let more = await iterator.next(); !more.done; more = await iterator.next()) yield more.value as Buffer;
          })(),
        ),
      };
    }
  }
}
