import fs from 'node:fs/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { LOCK_KEYS, tryLock } from '../../db/locks.js';
import { ImportBatch } from '../../entities/ImportBatch.js';
import type { ImportItemError } from '../../entities/ImportItem.js';
import type { UploadError } from '../../entities/Upload.js';
import { forEachLimited } from '../../lib/concurrency.js';
import { isInfrastructureError } from '../../lib/infrastructure.js';
import type { WorkContext } from '../../runtime/context.js';
import { scratchFile } from '../../storage/create.js';
import { metadataProblems, projectMetadataSchema } from '../metadata/metadata.js';
import { reserveAll } from '../quota/quota.js';
import { runUploadBatch } from '../upload/bulk.js';
import { bundledBytes, readBundle, stageFromBundle } from '../upload/bundles.js';
import { createUploads } from '../upload/uploads.js';
import { resetBatchReservation } from './batches.js';
import { claimContents, claimRefusalError } from './claims.js';
import { batchParams, itemEnding, itemFilename, processImportItem } from './process.js';
import { type StagedCompression, stagedCompressionOf } from './stage.js';

/**
 * Plain files (not PDB ids, not versions restored from a manifest) go through an import in chunks
 * of this many consecutive positions, one child job per chunk. One job per file spends most of its
 * time on per-file statements and transactions; a chunk does each step for all its files at once
 * (runUploadBatch).
 */
export const IMPORT_CHUNK_SIZE = 25;

interface ChunkItem {
  id: string;
  position: number;
  name: string;
  state: string;
  upload_id: string | null;
  received_sha256: string | null;
  received_compression: StagedCompression | null;
  sha256: string | null;
  size: string | null;
  staged_bundle: string | null;
  staged_offset: string | null;
}

/**
 * One chunk of an import: its pending files become uploads in one transaction (claims, rows,
 * quota), go through the upload stages together, and their outcomes are copied onto the items in
 * one statement. A compressed file (gzip/bzip2) goes with them, but its content, and so its claim
 * against duplicates, is known only once unpacked: it is claimed after ingest, for the chunk's
 * compressed files at once, as the one-by-one path claims it after its own ingest. Files the bulk
 * path does not cover — a staging file gone missing, an upload started one by one, a batch whose
 * metadata the project's schema refuses — take the item-by-item path of `processImportItem`, which
 * holds the rules for every case. Idempotent: every step is guarded by the item's state.
 */
export async function processImportChunk(ctx: WorkContext, input: { batchId: string; chunk: number }): Promise<void> {
  const batch = await ctx.em.findOne(ImportBatch, { id: input.batchId });
  if (!batch || batch.state !== 'running') return;
  const items = await ctx.em.execute<ChunkItem[]>(
    `select id, position, name, state, upload_id, received_sha256, received_compression, sha256, size, staged_bundle, staged_offset from import_items
      where batch_id = ? and position >= ? and position < ? and restore is null and state in ('pending', 'processing')
      order by position`,
    [batch.id, input.chunk * IMPORT_CHUNK_SIZE, (input.chunk + 1) * IMPORT_CHUNK_SIZE],
  );
  if (items.length === 0) return;
  const oneByOne: ChunkItem[] = [];
  const toStart: ChunkItem[] = [];
  const running: ChunkItem[] = [];
  /** Compressed: claimed by the content's hash once unpacked, not by the received bytes' hash. */
  const claimAfterIngest = new Set<string>();
  const metadataRefused =
    batch.source === 'archive' && metadataProblems(await projectMetadataSchema(ctx.em, batch.project), batch.options.metadata ?? {}).length > 0;
  for (const item of items) {
    if (batch.source === 'pdb_ids' || metadataRefused) oneByOne.push(item);
    else if (item.upload_id)
      (item.sha256 ? running : oneByOne).push(item); // unclaimed: started one by one, or compressed and stopped before its claim; one by one claims it after ingest
    else if (!item.received_sha256) oneByOne.push(item);
    else {
      // A lost staging file goes one by one (which fails it as lost).
      const compression = await stagedCompressionOf(ctx.staging, item.id, item.received_compression);
      if (compression === undefined) oneByOne.push(item);
      else {
        if (compression !== 'none') claimAfterIngest.add(item.id);
        toStart.push(item);
      }
    }
  }
  // The chunk's small files staged as one bundle: read once; those taken one by one get entries of their own.
  const bundleId = items.find((item) => item.staged_bundle)?.staged_bundle ?? undefined;
  const bundle = bundleId ? await readBundle(ctx.staging, bundleId) : undefined;
  const started = toStart.length > 0 ? await startUploads(ctx, batch, toStart, claimAfterIngest) : [];
  if (started === undefined) oneByOne.push(...toStart);
  // Files skipped as already stored or duplicated are done with their staged copies.
  else {
    const startedIds = new Set(started.map((item) => item.id));
    const ended = await ctx.em.execute<{ id: string }[]>(`select id from import_items where id = any(?::uuid[]) and state not in ('pending', 'processing')`, [
      sqlArray(toStart.filter((item) => !startedIds.has(item.id)).map((item) => item.id)),
    ]);
    await ctx.staging.removeMany(ended.map((item) => item.id));
  }
  if (bundle) {
    await stageFromBundle(
      ctx.staging,
      bundle,
      oneByOne.filter((item) => item.staged_bundle),
    );
  }
  const uploading = [...running, ...(started ?? [])];
  const uploads = uploading.map((item) => item.id);
  // Files taken one by one go alongside the chunk's bulk path (disjoint items, each on an
  // EntityManager of its own), so their parses queue with the chunk's instead of after them, and the
  // chunk's job slot is not held by them one after another. Files the quota refused the bulk move
  // for go in order afterwards: each takes what room is left.
  const together = started === undefined ? [] : oneByOne;
  const alongside = forEachLimited(
    together,
    ONE_BY_ONE_AT_ONCE,
    (item) => processImportItem({ ...ctx, em: ctx.em.fork() }, { batchId: batch.id, itemId: item.id }),
    { attemptAll: true },
  );
  const bulk = (async () => {
    if (uploads.length === 0) return;
    const stagedFiles = bundle ? await bundledFiles(ctx, bundle, uploading) : new Map<string, string>();
    const names = new Map(uploading.map((item) => [item.id, item.name]));
    try {
      await runUploadBatch(ctx, uploads, `c${input.chunk}`, {
        stagedFiles,
        afterIngest: { uploads: claimAfterIngest, judge: (ingested) => claimUnpacked(ctx, batch, ingested, names) },
      });
    } finally {
      await Promise.all([...stagedFiles.values()].map((file) => fs.rm(file, { force: true })));
    }
    await recordOutcomes(ctx.em, uploads);
    await ctx.staging.removeMany(uploads);
    await refreshStatistics(ctx.em);
  })();
  const settled = await Promise.allSettled([bulk, alongside]);
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  if (started === undefined) for (const item of oneByOne) await processImportItem(ctx, { batchId: batch.id, itemId: item.id });
  if (bundleId) await removeBundleWhenDone(ctx, bundleId);
}

/** One-by-one files of a chunk processed at once, beside its bulk path. */
const ONE_BY_ONE_AT_ONCE = 2;

/** Scratch copies of bundled files, for ingest to read instead of staging entries they do not have. */
async function bundledFiles(ctx: WorkContext, bundle: Buffer, items: ChunkItem[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const item of items) {
    if (!item.staged_bundle) continue;
    const file = await scratchFile(ctx.config, 'bundled');
    await fs.writeFile(file, bundledBytes(bundle, item));
    files.set(item.id, file);
  }
  return files;
}

/**
 * Removes the chunk's bundle once none of its files needs it: every one ended, and none failed for
 * an outage (reconcile opens those again and reads them from the bundle). Otherwise the bundle
 * stays, and the cleanup schedule removes it once nothing holds it (maintenance/cleanup/staleFiles.ts).
 */
async function removeBundleWhenDone(ctx: WorkContext, bundleId: string): Promise<void> {
  const open = await ctx.em.execute<{ state: string; message: string | null }[]>(
    `select state, error->>'message' as message from import_items where staged_bundle = ? and state in ('pending', 'processing', 'failed')`,
    [bundleId],
  );
  if (open.some((item) => item.state !== 'failed' || isInfrastructureError(item.message ?? ''))) return;
  await ctx.staging.remove(bundleId);
}

/**
 * Claims the content of the chunk's compressed files once unpacked, in one transaction, in position
 * order: the uploads to end as duplicates, with the reason their items are skipped for.
 */
async function claimUnpacked(
  ctx: WorkContext,
  batch: ImportBatch,
  ingested: ReadonlyMap<string, { sha256: string }>,
  names: ReadonlyMap<string, string>,
): Promise<Map<string, UploadError>> {
  const claimants = [...ingested].map(([id, { sha256 }]) => ({ id, sha256, name: names.get(id) ?? id }));
  if (claimants.length === 0) return new Map();
  const refused = await ctx.em.fork().transactional((tx) => claimContents(tx, batch, claimants));
  return new Map([...refused].map(([id, refusal]) => [id, claimRefusalError(refusal)]));
}

/**
 * Makes the chunk's pending files uploads in one transaction: each file's content is claimed in
 * the project (skipped when the project holds it as a current version, or another item — of this
 * chunk or of any import — is importing it), the uploads recorded, and their bytes moved from the
 * batch's quota reservation to their own. A compressed file (`claimAfterIngest`) becomes an upload
 * unclaimed. Returns the items that became uploads, or undefined when the quota no longer has room
 * for the move (then the one-by-one path refuses each file it must).
 */
async function startUploads(ctx: WorkContext, batch: ImportBatch, items: ChunkItem[], claimAfterIngest: ReadonlySet<string>): Promise<ChunkItem[] | undefined> {
  const NO_ROOM = Symbol('no room');
  try {
    return await ctx.em.fork().transactional(async (tx) => {
      const locked = await tx.execute<ChunkItem[]>(
        `select id, position, name, state, upload_id, received_sha256, received_compression, sha256, size, staged_bundle, staged_offset from import_items
          where id = any(?::uuid[]) and state = 'pending' and upload_id is null
          order by id for update`,
        [sqlArray(items.map((item) => item.id))],
      );
      locked.sort((a, b) => a.position - b.position);
      const refused = await claimContents(
        tx,
        batch,
        locked.filter((item) => !claimAfterIngest.has(item.id)).map((item) => ({ id: item.id, name: item.name, sha256: item.received_sha256 as string })),
      );
      const skipped: { id: string; error: ImportItemError; structure_id: string | null; sha256: string }[] = [];
      const starting: ChunkItem[] = [];
      for (const item of locked) {
        const refusal = refused.get(item.id);
        if (!refusal) starting.push(item);
        else
          skipped.push({
            id: item.id,
            sha256: item.received_sha256 as string,
            structure_id: refusal.structureId ?? null,
            error: { code: refusal.code, message: refusal.message },
          });
      }
      if (skipped.length > 0) {
        await tx.execute(
          `update import_items i set state = 'skipped', error = x.error, structure_id = x.structure_id, sha256 = x.sha256, updated_at = now()
             from jsonb_to_recordset(?::jsonb) as x(id uuid, error jsonb, structure_id uuid, sha256 text)
            where i.id = x.id and i.state = 'pending'`,
          [JSON.stringify(skipped)],
        );
      }
      const params = batchParams(batch);
      if (starting.length > 0) {
        await createUploads(
          tx,
          starting.map((item) => ({
            id: item.id,
            ownerId: batch.owner,
            projectId: batch.project,
            createsStructure: true,
            filename: itemFilename(item.name),
            receivedBytes: Number(item.size ?? 0),
            receivedSha256: item.received_sha256,
            params,
          })),
        );
        // A compressed file's item has no claim yet (sha256 stays null): a repeat delivery that finds it so takes it one by one, which claims it after ingest.
        await tx.execute(
          `update import_items set state = 'processing', upload_id = id, sha256 = case when id = any(?::uuid[]) then null else received_sha256 end, updated_at = now()
            where id = any(?::uuid[]) and state = 'pending'`,
          [sqlArray([...claimAfterIngest]), sqlArray(starting.map((item) => item.id))],
        );
      }
      // The bytes move from the batch's reservation (now only what is still pending) to each upload's own.
      await resetBatchReservation(tx, batch.owner, batch.id);
      const holds = starting.map((item) => ({ uploadId: item.id, bytes: Number(item.size ?? 0) }));
      if (!(await reserveAll(tx, batch.owner, holds))) throw NO_ROOM;
      return starting;
    });
  } catch (error) {
    if (error === NO_ROOM) return undefined;
    throw error;
  }
}

/** Copies the uploads' ends onto their items in one statement; a duplicate found while storing makes the item skipped. */
async function recordOutcomes(em: EntityManager, itemIds: string[]): Promise<void> {
  const rows = await em.execute<{ id: string; state: string; structure_id: string; blob_sha256: string | null; error: UploadError | null }[]>(
    `select i.id, u.state, u.structure_id, u.blob_sha256, u.error from import_items i join uploads u on u.id = i.upload_id
      where i.id = any(?::uuid[]) and i.state = 'processing'`,
    [sqlArray(itemIds)],
  );
  const ended = rows
    .filter((row) => row.state === 'stored' || row.state === 'rejected' || row.state === 'failed')
    .map((row) => {
      const { structureId, ...ending } = itemEnding({ state: row.state, structureId: row.structure_id, blob: row.blob_sha256, error: row.error });
      return { id: row.id, ...ending, structure_id: structureId };
    });
  if (ended.length > 0) {
    await em.execute(
      `update import_items i set state = x.state, error = x.error, structure_id = coalesce(x.structure_id, i.structure_id),
              sha256 = coalesce(x.sha256, i.sha256), updated_at = now()
         from jsonb_to_recordset(?::jsonb) as x(id uuid, state text, error jsonb, structure_id uuid, sha256 text)
        where i.id = x.id and i.state in ('pending', 'processing')`,
      [JSON.stringify(ended)],
    );
  }
  if (ended.length < rows.length) {
    // An upload still under way: a stage of ours failed in a way that should be retried.
    throw new Error(`${rows.length - ended.length} upload(s) of this import chunk stopped before they ended`);
  }
}

/** The tables an import grows, whose statistics its statements are planned by. */
const GROWN_TABLES = ['structures', 'structure_versions', 'blobs', 'uploads', 'import_items'];
/**
 * Tables an import's statements join but rarely change: autovacuum may never have analyzed them,
 * and then the planner takes an empty one for ten pages of rows and starts elsewhere (the blob
 * reference lookups began from all of the owner's structures instead of from no derivation).
 */
const JOINED_TABLES = ['drafts', 'derivations', 'derivation_owners', 'export_archives', 'projects'];

/**
 * Refreshes the planner's statistics of a table an import grows once it has changed by as many
 * rows as it held when last analyzed (at least 1,000), and of the tables it joins that were never
 * analyzed. Autovacuum analyzes a table at most once a minute; meanwhile an import can grow it from
 * nothing to thousands of rows, and statements planned for the tiny table it was (the owner's
 * structures first, then each version) read all of it once per file (bench:import shows it).
 * Postgres's advice for bulk loads is to ANALYZE after
 * them; this does it as the load goes, each table about each time it doubles. One chunk at a time:
 * a chunk that finds another one analyzing goes on without.
 */
async function refreshStatistics(em: EntityManager): Promise<void> {
  await em.transactional(async (tx) => {
    if (!(await tryLock(tx, LOCK_KEYS.importAnalyze))) return;
    const stale = await tx.execute<{ relname: string }[]>(
      `select s.relname from pg_stat_user_tables s join pg_class c on c.oid = s.relid
        where s.schemaname = current_schema()
          and ((s.relname = any(?::text[]) and s.n_mod_since_analyze >= greatest(1000, c.reltuples))
               or (s.relname = any(?::text[]) and c.reltuples < 0))`,
      [sqlArray(GROWN_TABLES), sqlArray(JOINED_TABLES)],
    );
    if (stale.length > 0) await tx.execute(`analyze ${stale.map((t) => `"${t.relname}"`).join(', ')}`);
  });
}
