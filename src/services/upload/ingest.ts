import fs from 'node:fs/promises';
import type { Format, Problem } from '../../formats/types.js';
import { MEDIA_TYPES } from '../../formats/types.js';
import type { IngestResult } from '../../pool/tasks.js';
import type { WorkContext } from '../../runtime/context.js';
import { scratchFile } from '../../storage/create.js';
import { asStorageFull, storageFullAware } from '../../storage/freeSpace.js';
import { announceBlobPuts, confirmBlobsStored, lockBlobs, recordBlobs, withdrawBlobPuts } from '../quota/blobs.js';
import { blobsChargedTo, reserveContent } from '../quota/quota.js';
import { ingestValidation, resolveFormat } from './format.js';
import { invalidStructure, overQuota } from './refusals.js';
import { endUploads, type UploadEnd, type UploadRow } from './uploads.js';

/** A file parsed while it was unpacked (small files, in bulk): validation uses it instead of parsing again. */
export type ParsedOnIngest = NonNullable<Extract<IngestResult, { ok: true }>['parsed']>;

export interface IngestOutcome {
  /** Unpacked, hashed and in the blob store: the upload is `processing` with its blob and format. */
  ingested: Map<string, { sha256: string; size: number; format: Format; compression: string | null; parsed?: ParsedOnIngest }>;
  /** Ended as rejected or failed, with the reason (already recorded on the upload). */
  refused: Map<string, UploadEnd>;
  /** Met an error of ours (a worker, the disk): nothing was recorded; the caller retries or takes it another way. */
  errors: Map<string, unknown>;
}

interface Ready {
  row: UploadRow;
  result: Extract<IngestResult, { ok: true }>;
  format: Format;
  warning?: Problem;
  tempFile: string;
  /** The temp file's bytes are on the disk: written and fsynced by the pool task, or linked to a staged file fsynced on receipt. */
  durable: boolean;
}

/**
 * The ingest stage for received uploads: each staged file unwrapped and hashed in the CPU pool
 * (and, with `parse`, parsed on the way), its format decided by content; then one short transaction
 * holds what each content costs against its owner's quota, the accepted blobs are put into the store
 * outside any transaction, and a second one records them and moves the uploads to `processing`.
 * Refusals end their uploads together. One upload is a batch of one.
 */
export async function ingestUploads(
  ctx: WorkContext,
  rows: readonly UploadRow[],
  options: {
    /** Parse on the way (all, or the uploads it answers true for). */
    parse?: boolean | ((row: UploadRow) => boolean);
    /** A file holding an upload's staged bytes, read instead of its staging entry (a bundle's files, services/upload/bundles.ts). */
    stagedFiles?: ReadonlyMap<string, string>;
  } = {},
): Promise<IngestOutcome> {
  const outcome: IngestOutcome = { ingested: new Map(), refused: new Map(), errors: new Map() };
  if (rows.length === 0) return outcome;
  const refuse = (end: UploadEnd) => outcome.refused.set(end.uploadId, end);
  const ready = (
    await Promise.all(
      rows.map(async (row): Promise<Ready | undefined> => {
        let tempFile: string | undefined;
        try {
          const unpacked = await scratchFile(ctx.config, 'ingest');
          tempFile = unpacked;
          const ingest = (stagingFile: string) =>
            ctx.cpu.ingest({
              stagingFile,
              tempFile: unpacked,
              maxExpandedBytes: ctx.config.maxExpandedBytes,
              maxExpansionRatio: ctx.config.maxExpansionRatio,
              expectedRawSha256: row.received_sha256 ?? undefined,
              parse: typeof options.parse === 'function' ? options.parse(row) : options.parse,
            });
          // On S3 the staged upload is streamed here from the bucket; locally it is read where it lies.
          const stagedFile = options.stagedFiles?.get(row.id);
          const result = await (stagedFile ? ingest(stagedFile) : ctx.staging.withFile(row.id, ingest));
          if (!result.ok) {
            // A fault of ours (5xx) fails the upload; a fault of the file rejects it.
            refuse({
              uploadId: row.id,
              state: result.status >= 500 ? 'failed' : 'rejected',
              error: { status: result.status, code: result.code, message: result.message },
            });
            return undefined;
          }
          const decision = resolveFormat(row.filename, row.format_hint as Format | null, result.detected, result.sniffReason);
          if ('error' in decision) {
            await fs.rm(tempFile, { force: true }); // nothing was committed: the temp file is all there is
            refuse({ uploadId: row.id, state: 'rejected', error: decision.error });
            return undefined;
          }
          // Parsed on ingest as the format it settled on, and unsound: refused as validation would
          // refuse it, without storing bytes only to delete them again.
          const parsed = result.parsed?.format === decision.format ? result.parsed.outcome : undefined;
          if (parsed && !parsed.ok) {
            await fs.rm(tempFile, { force: true });
            refuse({
              uploadId: row.id,
              state: 'rejected',
              error: invalidStructure(parsed, decision.warning ? [decision.warning] : []),
              learnt: { format: decision.format, compression: result.compression ?? null, validation: ingestValidation(decision.warning) },
            });
            return undefined;
          }
          // A bundle's scratch copy (services/upload/bundles.ts) was never fsynced: a link to it is not durable.
          return { row, result, format: decision.format, warning: decision.warning, tempFile: unpacked, durable: !stagedFile };
        } catch (error) {
          if (tempFile) await fs.rm(tempFile, { force: true }).catch(() => {});
          // A full disk is no fault of the file: surfaced as such, so the job waits for space.
          outcome.errors.set(row.id, asStorageFull(error) ?? error);
          return undefined;
        }
      }),
    )
  ).filter((item): item is Ready => item !== undefined);

  // Three steps, so no transaction is open while bytes travel to the store (assertBlobsStored says
  // why that order is safe): the quota holds in one short transaction, the blobs put, then the
  // blobs and uploads recorded in another.
  const kept = await storageFullAware(async () => {
    const { accepted, announcement } = await ctx.em.transactional(async (tx) => {
      if (ready.length === 0) return { accepted: [] as Ready[], announcement: { intents: [] } };
      await lockBlobs(
        tx,
        ready.map((item) => item.result.sha256),
      );
      const accepted: Ready[] = [];
      for (const [ownerId, items] of groupBy(ready, (item) => item.row.owner_id)) {
        // The content is known now: it costs its unpacked size, or nothing when the owner is charged
        // for the same bytes already. A .gz that unpacks past the quota is refused here, before its blob is kept.
        const charged = await blobsChargedTo(
          tx,
          ownerId,
          items.map((item) => item.result.sha256),
        );
        const refusedByQuota = await reserveContent(
          tx,
          ownerId,
          items.map((item) => ({ uploadId: item.row.id, bytes: charged.has(item.result.sha256) ? 0 : item.result.size })),
        );
        for (const item of items) {
          const over = refusedByQuota.get(item.row.id);
          if (over) refuse({ uploadId: item.row.id, state: 'rejected', error: overQuota(over) });
          else accepted.push(item);
        }
      }
      // Held from here until recorded, so the store need not be asked again whether the bytes are there.
      return {
        accepted,
        announcement: await announceBlobPuts(
          tx,
          accepted.map((item) => item.result.sha256),
        ),
      };
    });
    if (accepted.length === 0) return accepted;
    // Two uploads of the same content in one batch share a blob: it is put once, every temp file removed.
    // The pool task hashed each temp file as it wrote it: the store need not read it again to hash it.
    const firsts = new Map(accepted.map((item) => [item.result.sha256, item]));
    try {
      await Promise.all(
        accepted.map((item) =>
          firsts.get(item.result.sha256) === item
            ? ctx.blobs.putFile(item.tempFile, { sha256: item.result.sha256, size: item.result.size }, { move: true, hashed: true, durable: item.durable })
            : fs.rm(item.tempFile, { force: true }),
        ),
      );
      await ctx.em.transactional(async (tx) => {
        await lockBlobs(tx, [...firsts.keys()]);
        await confirmBlobsStored(tx, ctx.blobs, announcement);
        await recordBlobs(
          tx,
          [...firsts.values()].map((item) => ({
            sha256: item.result.sha256,
            size: item.result.size,
            storedSize: item.result.size,
            mediaType: MEDIA_TYPES[item.format],
          })),
        );
        // A file parsed as it was received (api/intake/receipt.ts) keeps that parse if the content
        // settled on the format it was parsed as, with the format's warning first, as the validate stage
        // would have recorded it; otherwise the validate stage parses it.
        await tx.execute(
          `update uploads u set state = 'processing', blob_sha256 = x.sha256, format = x.format, compression = x.compression,
              summary = case when u.format = x.format then u.summary end, kind = case when u.format = x.format then u.kind end,
              validation = case when u.summary is null then coalesce(x.validation, u.validation)
                                when u.format is distinct from x.format then x.validation
                                when x.validation is null then u.validation
                                else jsonb_set(u.validation, '{warnings}', (x.validation -> 'warnings') || coalesce(u.validation -> 'warnings', '[]'::jsonb)) end,
              updated_at = now()
         from jsonb_to_recordset(?::jsonb) as x(id uuid, sha256 text, format text, compression text, validation jsonb)
        where u.id = x.id and u.state = 'received'`,
          [
            JSON.stringify(
              accepted.map((item) => ({
                id: item.row.id,
                sha256: item.result.sha256,
                format: item.format,
                compression: item.result.compression ?? null,
                validation: ingestValidation(item.warning),
              })),
            ),
          ],
        );
      });
    } catch (error) {
      // Not recorded: the bytes put are garbage collection's again once the announcements go.
      await withdrawBlobPuts(ctx.em, announcement).catch(() => {});
      throw error;
    }
    return accepted;
  }).catch(async (error) => {
    // Nothing was recorded: the temp files (those not yet moved into the store) are all there is;
    // the uploads stay received and are retried. A blob already put is garbage collection's.
    await Promise.all(ready.map((item) => fs.rm(item.tempFile, { force: true }).catch(() => {})));
    throw error;
  });
  // Refused for quota before their bytes were stored: their temp files are all there is.
  const keptIds = new Set(kept.map((item) => item.row.id));
  await Promise.all(ready.filter((item) => !keptIds.has(item.row.id)).map((item) => fs.rm(item.tempFile, { force: true })));
  await endUploads(ctx.em, ctx, [...outcome.refused.values()]);
  await ctx.staging.removeMany(kept.map((item) => item.row.id));
  for (const item of kept) {
    outcome.ingested.set(item.row.id, {
      sha256: item.result.sha256,
      size: item.result.size,
      format: item.format,
      compression: item.result.compression ?? null,
      // Parsed as the format the content was detected as: of use only if the upload settled on that one.
      parsed: item.result.parsed?.format === item.format ? item.result.parsed : undefined,
    });
  }
  return outcome;
}

export function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
