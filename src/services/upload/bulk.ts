import fs from 'node:fs/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import type { UploadError, UploadParams } from '../../entities/Upload.js';
import type { Format, Problem, StructureSummary, ValidationReport } from '../../formats/types.js';
import { MEDIA_TYPES } from '../../formats/types.js';
import type { JobContext } from '../../jobs/define.js';
import { enqueue } from '../../jobs/enqueue.js';
import { resolveFormat } from '../../jobs/handlers/ingest.js';
import { indexJob } from '../../jobs/handlers/searchIndex.js';
import { defaultName } from '../../jobs/handlers/snapshot.js';
import { invalidStructure, parseAborted } from '../../jobs/handlers/validate.js';
import type { IngestResult } from '../../pool/tasks.js';
import { blobsHeldBy, QuotaExceededError, reserve } from '../quota/quota.js';
import { lockQuota, refreshUsage } from '../quota/usage.js';
import { pruneStructure } from '../versions/pruning.js';
import { runUploadPipeline } from './pipeline.js';
import { endUnstoredUploads, endUpload, type UploadEnd } from './uploads.js';

/**
 * The upload stages for many uploads at once (a bulk import's chunk): the same states, checks and
 * refusals as ingest → validate → snapshot → index, but each stage's database work done for the
 * whole chunk in one transaction and a handful of set-based statements, instead of ~28 statements
 * and three transactions per file. On this machine that per-statement cost, not parsing, is what
 * bounds an import's rate.
 *
 * Covered in bulk: uploads that create a structure (what an import makes). Anything else — a new
 * version of an existing structure, a draft checkpoint — and any upload whose bulk step meets an
 * unexpected error goes through runUploadPipeline one by one, so the rules live in one place.
 * Every step is guarded by the upload's state, so a repeat delivery of the chunk resumes where the
 * last one stopped and never stores a file twice.
 */
export async function runUploadBatch(ctx: JobContext, uploadIds: readonly string[], batchKey: string): Promise<Map<string, string>> {
  const singles = new Set<string>();
  const rows = await loadUploads(ctx.em, uploadIds);
  for (const row of rows) {
    if (!row.creates_structure || row.params.fromDraft) singles.add(row.id);
  }
  const bulk = (state: string, test: (row: UploadRow) => boolean = () => true) =>
    rows.filter((row) => !singles.has(row.id) && row.state === state && test(row));

  const parsedWhileIngested = await ingestMany(ctx, bulk('received'), singles);
  const afterIngest = await loadUploads(ctx.em, uploadIds);
  await validateMany(
    ctx,
    afterIngest.filter((row) => !singles.has(row.id) && row.state === 'processing' && !row.summary && row.blob_sha256 && row.format),
    singles,
    parsedWhileIngested,
  );
  await snapshotMany(
    ctx,
    (await loadUploads(ctx.em, uploadIds)).filter((row) => !singles.has(row.id) && row.state === 'processing' && row.summary).map((row) => row.id),
  );
  // One index job for every stored upload of the chunk not yet searchable (this delivery's, or an earlier one's that stopped short).
  const unindexed = await ctx.em.execute<{ id: string; structure_id: string }[]>(
    `select id, structure_id from uploads where id = any(?::uuid[]) and state = 'stored' and indexed_at is null order by id`,
    [sqlArray(uploadIds.filter((id) => !singles.has(id)))],
  );
  if (unindexed.length > 0) {
    await enqueue(ctx.queues, indexJob, {
      structureId: unindexed[0].structure_id,
      structureIds: unindexed.map((u) => u.structure_id),
      uploadIds: unindexed.map((u) => u.id),
      stamp: `${batchKey}${Date.now().toString(36)}`,
    });
  }
  for (const uploadId of singles) {
    const row = rows.find((r) => r.id === uploadId);
    if (row) await runUploadPipeline(ctx, { uploadId, ownerId: row.owner_id });
  }
  const final = await loadUploads(ctx.em, uploadIds);
  return new Map(final.map((row) => [row.id, row.state]));
}

interface UploadRow {
  id: string;
  owner_id: string;
  project_id: string;
  structure_id: string;
  creates_structure: boolean;
  state: string;
  filename: string;
  format_hint: string | null;
  received_sha256: string | null;
  params: UploadParams;
  blob_sha256: string | null;
  format: string | null;
  kind: string | null;
  summary: StructureSummary | null;
  validation: ValidationReport | null;
}

async function loadUploads(em: EntityManager, ids: readonly string[]): Promise<UploadRow[]> {
  if (ids.length === 0) return [];
  return em.execute<UploadRow[]>(
    `select id, owner_id, project_id, structure_id, creates_structure, state, filename, format_hint, received_sha256, params,
            blob_sha256, format, kind, summary, validation
       from uploads where id = any(?::uuid[]) order by id`,
    [sqlArray(ids)],
  );
}

/** One transaction-scoped advisory lock per blob, taken in hash order (as lockBlob does one by one). */
async function lockBlobs(tx: EntityManager, hashes: readonly string[]): Promise<void> {
  const sorted = [...new Set(hashes)].sort();
  if (sorted.length === 0) return;
  await tx.execute(
    `select pg_advisory_xact_lock(hashtextextended('blob:' || h, 0))
       from (select value as h from jsonb_array_elements_text(?::jsonb) order by 1) ordered`,
    [JSON.stringify(sorted)],
  );
}

interface Ingested {
  row: UploadRow;
  result: Extract<IngestResult, { ok: true }>;
  format: Format;
  warning?: Problem;
  tempFile: string;
}

/**
 * Ingest for many: unwrap, hash (and parse, for small files) in piscina, then one transaction
 * commits every blob and moves the uploads on. Returns the parse outcomes made on the way, by upload.
 */
async function ingestMany(ctx: JobContext, rows: UploadRow[], singles: Set<string>): Promise<Map<string, ParsedOnIngest>> {
  const parsed = new Map<string, ParsedOnIngest>();
  if (rows.length === 0) return parsed;
  /** Refused before their bytes were stored: ended together, below. */
  const refusedEarly: UploadEnd[] = [];
  const ready = (
    await Promise.all(
      rows.map(async (row): Promise<Ingested | undefined> => {
        try {
          // A staged file gone missing fails the task: the one-by-one stage then records the loss with its reason.
          const tempFile = await ctx.blobs.tempPath();
          const result = await ctx.cpu.ingest({
            stagingFile: ctx.staging.file(row.id),
            tempFile,
            maxExpandedBytes: ctx.config.maxExpandedBytes,
            maxExpansionRatio: ctx.config.maxExpansionRatio,
            expectedRawSha256: row.received_sha256 ?? undefined,
            parse: true,
          });
          if (!result.ok) {
            refusedEarly.push({
              uploadId: row.id,
              state: result.status >= 500 ? 'failed' : 'rejected',
              error: { status: result.status, code: result.code, message: result.message },
            });
            return undefined;
          }
          const decision = resolveFormat(row.filename, row.format_hint as Format | null, result.detected, result.sniffReason);
          if ('error' in decision) {
            await fs.rm(tempFile, { force: true });
            refusedEarly.push({ uploadId: row.id, state: 'rejected', error: decision.error });
            return undefined;
          }
          // Parsed on ingest as the format it settled on, and unsound: refused as validation would
          // refuse it, without storing bytes only to delete them again.
          const outcome = result.parsed?.format === decision.format ? result.parsed.outcome : undefined;
          if (outcome && !outcome.ok) {
            await fs.rm(tempFile, { force: true });
            refusedEarly.push({
              uploadId: row.id,
              state: 'rejected',
              error: invalidStructure(outcome, decision.warning ? [decision.warning] : []),
              learnt: { format: decision.format, compression: result.compression ?? null, validation: ingestValidation(decision.warning) },
            });
            return undefined;
          }
          return { row, result, format: decision.format, warning: decision.warning, tempFile };
        } catch (error) {
          ctx.log.warn({ err: error, uploadId: row.id }, 'bulk ingest: taking this upload one by one');
          singles.add(row.id);
          return undefined;
        }
      }),
    )
  ).filter((item): item is Ingested => item !== undefined);
  await endUnstoredUploads(ctx.em, ctx, refusedEarly);
  if (ready.length === 0) return parsed;

  const refused: { item: Ingested; error: UploadError }[] = [];
  const accepted = await ctx.em.transactional(async (tx) => {
    await lockBlobs(
      tx,
      ready.map((item) => item.result.sha256),
    );
    const byOwner = groupBy(ready, (item) => item.row.owner_id);
    const kept: Ingested[] = [];
    for (const [ownerId, items] of byOwner) {
      const held = await blobsHeldBy(
        tx,
        ownerId,
        items.map((item) => item.result.sha256),
      );
      // Content the owner holds already costs nothing; the rest costs its unpacked size, which the
      // bytes held since receipt usually cover (then the hold only shrinks, and needs no quota lock).
      const needs = items.map((item) => ({ uploadId: item.row.id, bytes: held.has(item.result.sha256) ? 0 : item.result.size }));
      const short = await tx.execute<{ upload_id: string; bytes: string; held: string | null }[]>(
        `with wanted as (select * from jsonb_to_recordset(?::jsonb) as x("uploadId" uuid, bytes bigint)),
              shrunk as (update quota_reservations q set bytes = w.bytes, updated_at = now()
                           from wanted w where q.upload_id = w."uploadId" and q.bytes >= w.bytes returning q.upload_id)
         select w."uploadId" as upload_id, w.bytes, q.bytes as held from wanted w
           left join quota_reservations q on q.upload_id = w."uploadId"
          where w."uploadId" not in (select upload_id from shrunk)`,
        [JSON.stringify(needs)],
      );
      const refusedIds = new Set<string>();
      for (const row of short) {
        try {
          await reserve(tx, { userId: ownerId, uploadId: row.upload_id, needed: Number(row.bytes) });
        } catch (error) {
          if (!(error instanceof QuotaExceededError)) throw error;
          refusedIds.add(row.upload_id);
          const item = items.find((i) => i.row.id === row.upload_id) as Ingested;
          refused.push({ item, error: { status: 507, code: error.code, message: error.message, details: error.details } });
        }
      }
      kept.push(...items.filter((item) => !refusedIds.has(item.row.id)));
    }
    await Promise.all(kept.map((item) => ctx.blobs.commit(item.tempFile, item.result.sha256)));
    const blobs = new Map(
      kept.map((item) => [item.result.sha256, { sha256: item.result.sha256, size: item.result.size, mediaType: MEDIA_TYPES[item.format] }]),
    );
    if (blobs.size > 0) {
      await tx.execute(
        `insert into blobs (sha256, size, stored_size, media_type, created_at)
         select x.sha256, x.size, x.size, x."mediaType", now() from jsonb_to_recordset(?::jsonb) as x(sha256 text, size bigint, "mediaType" text)
         on conflict (sha256) do update set orphaned_at = null`,
        [JSON.stringify([...blobs.values()])],
      );
      await tx.execute(
        `update uploads u set state = 'processing', blob_sha256 = x.sha256, format = x.format, compression = x.compression,
                validation = coalesce(x.validation, u.validation), updated_at = now()
           from jsonb_to_recordset(?::jsonb) as x(id uuid, sha256 text, format text, compression text, validation jsonb)
          where u.id = x.id and u.state = 'received'`,
        [
          JSON.stringify(
            kept.map((item) => ({
              id: item.row.id,
              sha256: item.result.sha256,
              format: item.format,
              compression: item.result.compression ?? null,
              validation: ingestValidation(item.warning),
            })),
          ),
        ],
      );
    }
    return kept;
  });
  // Refused for quota before their bytes were stored: ended together, as the early refusals were.
  await Promise.all(refused.map(({ item }) => fs.rm(item.tempFile, { force: true })));
  await endUnstoredUploads(
    ctx.em,
    ctx,
    refused.map(({ item, error }) => ({ uploadId: item.row.id, state: 'rejected', error })),
  );
  await Promise.all(accepted.map((item) => ctx.staging.remove(item.row.id)));
  for (const item of accepted) {
    // Parsed as the format the content was detected as: of use only if the upload settled on that one.
    if (item.result.parsed?.format === item.format) parsed.set(item.row.id, item.result.parsed);
  }
  return parsed;
}

/** The report ingest leaves on an upload: its format warning, if any, until validation writes the whole one. */
function ingestValidation(warning: Problem | undefined): ValidationReport | null {
  return warning ? { problems: [], warnings: [warning], parser: 'sniff', parseMs: 0 } : null;
}

type ParsedOnIngest = NonNullable<Extract<IngestResult, { ok: true }>['parsed']>;

/** Validate for many: parse in piscina (all queued at once), then one statement records every summary. */
async function validateMany(ctx: JobContext, rows: UploadRow[], singles: Set<string>, parsedWhileIngested: Map<string, ParsedOnIngest>): Promise<void> {
  if (rows.length === 0) return;
  const parsed = await Promise.all(
    rows.map(async (row) => {
      const earlier: Problem[] = row.validation?.warnings ?? [];
      try {
        const ready = parsedWhileIngested.get(row.id);
        const outcome =
          ready?.format === row.format
            ? ready.outcome
            : await ctx.cpu.parse({ path: ctx.blobs.localPath(row.blob_sha256 as string), format: row.format as Format });
        if (!outcome.ok) {
          await endUpload(ctx.em, ctx, row.id, 'rejected', invalidStructure(outcome, earlier));
          return undefined;
        }
        return {
          id: row.id,
          summary: outcome.summary,
          kind: outcome.kind,
          validation: { ...outcome.report, warnings: [...earlier, ...outcome.report.warnings] },
        };
      } catch (error) {
        const aborted = parseAborted(error);
        if (aborted) await endUpload(ctx.em, ctx, row.id, 'rejected', aborted);
        else singles.add(row.id);
        return undefined;
      }
    }),
  );
  const ok = parsed.filter((p) => p !== undefined);
  if (ok.length === 0) return;
  await ctx.em.execute(
    `update uploads u set summary = x.summary, kind = x.kind, validation = x.validation, updated_at = now()
       from jsonb_to_recordset(?::jsonb) as x(id uuid, summary jsonb, kind text, validation jsonb)
      where u.id = x.id and u.state = 'processing' and u.summary is null`,
    [JSON.stringify(ok)],
  );
}

/**
 * Snapshot for many new structures in one transaction: structures, first versions, uploads stored,
 * and the owner charged once for the bytes new to them (each distinct blob once).
 */
async function snapshotMany(ctx: JobContext, uploadIds: string[]): Promise<void> {
  if (uploadIds.length === 0) return;
  const outcome = await ctx.em.transactional(async (tx) => {
    const rows = await tx.execute<(UploadRow & { size: string })[]>(
      `select u.id, u.owner_id, u.project_id, u.structure_id, u.filename, u.params, u.blob_sha256, u.format, u.kind, u.summary, u.validation, b.size
         from uploads u join blobs b on b.sha256 = u.blob_sha256
        where u.id = any(?::uuid[]) and u.state = 'processing' and u.creates_structure
          and u.summary is not null and u.validation is not null and u.format is not null
        order by u.id for update of u`,
      [sqlArray(uploadIds)],
    );
    if (rows.length === 0) return { gone: [], renumbered: [] };
    await lockBlobs(
      tx,
      rows.map((row) => row.blob_sha256 as string),
    );
    // Decided under the blobs' locks, before the versions exist: which bytes does each owner hold already?
    const heldBefore = new Map<string, Set<string>>();
    for (const [ownerId, owned] of groupBy(rows, (row) => row.owner_id)) {
      heldBefore.set(
        ownerId,
        await blobsHeldBy(
          tx,
          ownerId,
          owned.map((row) => row.blob_sha256 as string),
        ),
      );
    }
    const now = new Date().toISOString();
    await tx.execute(
      `insert into structures (id, project_id, owner_id, name, description, kind, tags, metadata, created_at, updated_at)
       select x.id, x.project_id, x.owner_id, x.name, x.description, x.kind, array(select jsonb_array_elements_text(x.tags)), x.metadata, ?, ?
         from jsonb_to_recordset(?::jsonb) as x(id uuid, project_id uuid, owner_id uuid, name text, description text, kind text, tags jsonb, metadata jsonb)
       on conflict (id) do nothing`,
      [
        now,
        now,
        JSON.stringify(
          rows.map((row) => ({
            id: row.structure_id,
            project_id: row.project_id,
            owner_id: row.owner_id,
            name: row.params.name ?? defaultName(row.filename),
            description: row.params.description ?? '',
            kind: row.kind ?? 'other',
            tags: row.params.tags ?? [],
            metadata: row.params.metadata ?? {},
          })),
        ),
      ],
    );
    // Normally each structure is new and gets version 1; numbered from what exists all the same.
    const existing = await tx.execute<{ id: string; deleted: boolean; last: number | null }[]>(
      `select s.id, s.deleted_at is not null as deleted, (select max(number) from structure_versions v where v.structure_id = s.id) as last
         from structures s where s.id = any(?::uuid[]) order by s.id for update`,
      [sqlArray(rows.map((row) => row.structure_id))],
    );
    const byStructure = new Map(existing.map((s) => [s.id, s]));
    const live = rows.filter((row) => !byStructure.get(row.structure_id)?.deleted);
    const versions = live.map((row) => ({
      row,
      id: crypto.randomUUID(),
      number: (byStructure.get(row.structure_id)?.last ?? 0) + 1,
    }));
    await tx.execute(
      `insert into structure_versions (id, structure_id, number, blob_sha256, format, filename, message, author_id, summary, validation, pinned, upload, created_at)
       select x.id, x.structure_id, x.number, x.blob, x.format, x.filename, x.message, x.author, x.summary, x.validation, false, x.upload, ?
         from jsonb_to_recordset(?::jsonb) as x(id uuid, structure_id uuid, number int, blob text, format text, filename text, message text,
                                                author uuid, summary jsonb, validation jsonb, upload uuid)`,
      [
        now,
        JSON.stringify(
          versions.map(({ row, id, number }) => ({
            id,
            structure_id: row.structure_id,
            number,
            blob: row.blob_sha256,
            format: row.format,
            filename: row.filename,
            message: row.params.message ?? null,
            author: row.owner_id,
            summary: row.summary,
            validation: row.validation,
            upload: row.id,
          })),
        ),
      ],
    );
    const changes = JSON.stringify(
      versions.map(({ row, id, number }) => ({ structure: row.structure_id, version: id, number, kind: row.kind, upload: row.id })),
    );
    await tx.execute(
      `update structures s set current_version_id = x.version, kind = coalesce(x.kind, s.kind), updated_at = ?
         from jsonb_to_recordset(?::jsonb) as x(structure uuid, version uuid, kind text) where s.id = x.structure`,
      [now, changes],
    );
    await tx.execute(
      `update uploads u set state = 'stored', version = x.number, updated_at = now()
         from jsonb_to_recordset(?::jsonb) as x(upload uuid, number int) where u.id = x.upload`,
      [changes],
    );
    // Charged once per owner: each distinct blob they did not hold before this chunk, at its size.
    for (const [ownerId, owned] of groupBy(live, (row) => row.owner_id)) {
      const hashes = [...new Set(owned.map((row) => row.blob_sha256 as string))];
      const held = heldBefore.get(ownerId) ?? new Set<string>();
      const sizeOf = new Map(owned.map((row) => [row.blob_sha256 as string, Number(row.size)]));
      const addedBytes = hashes.filter((h) => !held.has(h)).reduce((sum, h) => sum + (sizeOf.get(h) ?? 0), 0);
      // Bytes that already have derivatives bring those along (charged as derived), which only a recomputation counts.
      const [derived] = await tx.execute<{ n: string }[]>('select count(*) as n from derivations where source_blob_sha256 = any(?::text[])', [
        sqlArray(hashes),
      ]);
      await lockQuota(tx, ownerId);
      await tx.execute('delete from quota_reservations where upload_id = any(?::uuid[])', [sqlArray(owned.map((row) => row.id))]);
      const [updated] =
        Number(derived?.n ?? 0) > 0
          ? [{ n: '0' }]
          : await tx.execute<{ n: string }[]>(
              'with changed as (update user_usage set used_bytes = used_bytes + ? where user_id = ? returning 1) select count(*) as n from changed',
              [addedBytes, ownerId],
            );
      if (Number(updated?.n ?? 0) === 0) await refreshUsage(tx, ownerId); // first figure for this user, or derivatives: computed whole
    }
    await tx.execute(`select pg_notify('molvault_upload', id) from jsonb_array_elements_text(?::jsonb) as id`, [JSON.stringify(live.map((row) => row.id))]);
    return {
      gone: rows.filter((row) => !live.includes(row)).map((row) => row.id),
      renumbered: versions.filter((v) => v.number > 1).map((v) => v.row.structure_id),
    };
  });
  // Rare: the structure was deleted meanwhile. Refused as the one-by-one snapshot refuses it.
  for (const uploadId of outcome.gone) {
    await endUpload(ctx.em, ctx, uploadId, 'rejected', {
      status: 409,
      code: 'structure_deleted',
      message: 'The structure was deleted while this version was being stored.',
    });
  }
  // A first version is never pruned; a later one brings the project's retention policy into play.
  for (const structureId of outcome.renumbered) await pruneStructure(ctx.em, ctx.blobs, structureId);
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
