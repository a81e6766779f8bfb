import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { notifyWorkChanged } from '../../db/notify.js';
import type { UploadParams } from '../../entities/Upload.js';
import type { StructureSummary, ValidationReport } from '../../formats/types.js';
import type { WorkContext } from '../../runtime/context.js';
import { lockBlobs } from '../quota/blobs.js';
import { blobsChargedTo, chargeUploads } from '../quota/quota.js';
import { removeCheckpointedDraft } from '../versions/drafts.js';
import { type PruneResult, pruneStructure } from '../versions/pruning.js';
import { defaultName } from './format.js';
import { groupBy } from './ingest.js';
import { STRUCTURE_DELETED } from './refusals.js';
import { endUploads } from './uploads.js';

/** A validated upload, ready to become a version (locked for the snapshot's transaction). */
interface Storable {
  id: string;
  owner_id: string;
  project_id: string;
  structure_id: string;
  creates_structure: boolean;
  filename: string;
  params: UploadParams;
  blob_sha256: string;
  format: string;
  kind: string | null;
  summary: StructureSummary;
  validation: ValidationReport;
  size: string;
}

export type StoreResult = { structureId: string; version: number; pruned?: PruneResult } | { gone: true };

/**
 * The snapshot stage for validated uploads (`processing` with a summary), in one transaction: the
 * structures they create, their versions (numbered after the structure's last, under its row
 * lock), the structures pointed at them (a new version's name, description, tags and metadata
 * applied), a checkpointed draft removed, the uploads `stored`, and each owner charged once for
 * the bytes new to them. An upload whose structure was deleted meanwhile is refused; a structure
 * that now has more than one version meets its project's retention policy. One upload is a batch
 * of one. Uploads not (or no longer) ready are left out of the answer.
 */
export async function storeUploads(ctx: WorkContext, uploadIds: readonly string[]): Promise<Map<string, StoreResult>> {
  const results = new Map<string, StoreResult>();
  if (uploadIds.length === 0) return results;
  const outcome = await ctx.em.transactional(async (tx) => {
    const rows = await tx.execute<Storable[]>(
      `select u.id, u.owner_id, u.project_id, u.structure_id, u.creates_structure, u.filename, u.params, u.blob_sha256, u.format, u.kind,
              u.summary, u.validation, b.size
         from uploads u join blobs b on b.sha256 = u.blob_sha256
        where u.id = any(?::uuid[]) and u.state = 'processing'
          and u.summary is not null and u.validation is not null and u.format is not null
        order by u.id for update of u`,
      [sqlArray(uploadIds)],
    );
    if (rows.length === 0) return { stored: [], gone: [] };
    await lockBlobs(
      tx,
      rows.map((row) => row.blob_sha256),
    );
    // Decided under the blobs' locks, before the versions exist: which bytes is each owner charged for already?
    const chargedBefore = new Map<string, Set<string>>();
    for (const [ownerId, owned] of groupBy(rows, (row) => row.owner_id)) {
      chargedBefore.set(
        ownerId,
        await blobsChargedTo(
          tx,
          ownerId,
          owned.map((row) => row.blob_sha256),
        ),
      );
    }
    // Millisecond times like every other row: list cursors compare them exactly.
    const now = new Date().toISOString();
    await insertStructures(
      tx,
      rows.filter((row) => row.creates_structure),
      now,
    );
    const versions = await insertVersions(tx, rows, now);
    const live = rows.filter((row) => versions.has(row.id));
    await pointStructures(tx, live, versions, now);
    for (const row of live) if (row.params.fromDraft) await removeCheckpointedDraft(tx, row.structure_id, row.id);
    await tx.execute(
      `update uploads u set state = 'stored', version = x.number, updated_at = now()
         from jsonb_to_recordset(?::jsonb) as x(id uuid, number int) where u.id = x.id`,
      [JSON.stringify(live.map((row) => ({ id: row.id, number: versions.get(row.id)?.number })))],
    );
    for (const [ownerId, owned] of groupBy(live, (row) => row.owner_id)) {
      const hashes = [...new Set(owned.map((row) => row.blob_sha256))];
      const charged = chargedBefore.get(ownerId) ?? new Set<string>();
      const sizeOf = new Map(owned.map((row) => [row.blob_sha256, Number(row.size)]));
      const addedBytes = hashes.filter((hash) => !charged.has(hash)).reduce((sum, hash) => sum + (sizeOf.get(hash) ?? 0), 0);
      // Bytes that already have derivatives bring those along (charged as derived), which only a recomputation counts.
      const [derived] = await tx.execute<{ n: string }[]>('select count(*) as n from derivations where source_blob_sha256 = any(?::text[])', [
        sqlArray(hashes),
      ]);
      await chargeUploads(
        tx,
        ownerId,
        owned.map((row) => row.id),
        addedBytes,
        { recompute: Number(derived?.n ?? 0) > 0 },
      );
    }
    await notifyWorkChanged(
      tx,
      live.map((row) => row.id),
    );
    return {
      stored: live.map((row) => ({ row, number: versions.get(row.id)?.number ?? 1 })),
      gone: rows.filter((row) => !versions.has(row.id)).map((row) => row.id),
    };
  });
  await endUploads(
    ctx.em,
    ctx,
    outcome.gone.map((uploadId) => ({ uploadId, state: 'rejected', error: STRUCTURE_DELETED })),
  );
  for (const uploadId of outcome.gone) results.set(uploadId, { gone: true });
  for (const { row, number: version } of outcome.stored) {
    const result: StoreResult = { structureId: row.structure_id, version };
    // A first version is never pruned; a later one brings the project's retention policy into play.
    if (version > 1) {
      const pruned = await pruneStructure(ctx.em, ctx.blobs, row.structure_id);
      if (pruned.versions > 0) result.pruned = pruned;
    }
    results.set(row.id, result);
  }
  return results;
}

/** The structures uploads create, in one statement (a repeat is a no-op). */
async function insertStructures(tx: EntityManager, rows: readonly Storable[], now: string): Promise<void> {
  if (rows.length === 0) return;
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
}

/**
 * The versions, in one statement, each numbered after its structure's last under the structure's
 * row lock. Uploads whose structure is gone or deleted get none. Returns each version by upload.
 */
async function insertVersions(tx: EntityManager, rows: readonly Storable[], now: string): Promise<Map<string, { id: string; number: number }>> {
  const ids = sqlArray(rows.map((row) => row.structure_id));
  const locked = await tx.execute<{ id: string }[]>('select id from structures where id = any(?::uuid[]) and deleted_at is null order by id for update', [ids]);
  // Read after the locks are held (a statement of its own, so it sees versions committed while it waited).
  const numbered = await tx.execute<{ id: string; last: number | null }[]>(
    'select s.id, (select max(number) from structure_versions v where v.structure_id = s.id) as last from structures s where s.id = any(?::uuid[])',
    [sqlArray(locked.map((row) => row.id))],
  );
  const last = new Map(numbered.map((s) => [s.id, s.last ?? 0]));
  const versions = new Map<string, { id: string; number: number }>();
  for (const row of rows) {
    const previous = last.get(row.structure_id);
    if (previous === undefined) continue;
    versions.set(row.id, { id: randomUUID(), number: previous + 1 });
    last.set(row.structure_id, previous + 1);
  }
  if (versions.size === 0) return versions;
  await tx.execute(
    `insert into structure_versions (id, structure_id, number, blob_sha256, format, filename, message, author_id, summary, validation, pinned, upload, created_at)
     select x.id, x.structure_id, x.number, x.blob, x.format, x.filename, x.message, x.author, x.summary, x.validation, false, x.upload, ?
       from jsonb_to_recordset(?::jsonb) as x(id uuid, structure_id uuid, number int, blob text, format text, filename text, message text,
                                              author uuid, summary jsonb, validation jsonb, upload uuid)`,
    [
      now,
      JSON.stringify(
        rows
          .filter((row) => versions.has(row.id))
          .map((row) => ({
            id: versions.get(row.id)?.id,
            structure_id: row.structure_id,
            number: versions.get(row.id)?.number,
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
  return versions;
}

/**
 * Points each structure at its new version, with the kind the file has; a new version of an
 * existing structure also applies the name, description, tags and metadata it was sent with
 * (metadata merged key by key). In one statement.
 */
async function pointStructures(tx: EntityManager, rows: readonly Storable[], versions: Map<string, { id: string; number: number }>, now: string) {
  if (rows.length === 0) return;
  // The last version of each structure wins (several uploads of one structure in a batch are stored in order).
  const latest = new Map<string, Storable>();
  for (const row of rows) {
    const seen = latest.get(row.structure_id);
    if (!seen || (versions.get(row.id)?.number ?? 0) > (versions.get(seen.id)?.number ?? 0)) latest.set(row.structure_id, row);
  }
  await tx.execute(
    `update structures s set current_version_id = x.version, kind = coalesce(x.kind, s.kind), updated_at = ?,
            name = coalesce(x.name, s.name), description = coalesce(x.description, s.description),
            tags = case when x.tags is null then s.tags else array(select jsonb_array_elements_text(x.tags)) end,
            metadata = case when x.metadata is null then s.metadata else s.metadata || x.metadata end
       from jsonb_to_recordset(?::jsonb) as x(structure uuid, version uuid, kind text, name text, description text, tags jsonb, metadata jsonb)
      where s.id = x.structure`,
    [
      now,
      JSON.stringify(
        [...latest.values()].map((row) => {
          // A structure made by this upload has its fields already; a new version changes only what it was sent with.
          const changes = row.creates_structure ? {} : row.params;
          return {
            structure: row.structure_id,
            version: versions.get(row.id)?.id,
            kind: row.kind,
            name: changes.name || null,
            description: changes.description ?? null,
            tags: changes.tags ?? null,
            metadata: changes.metadata ?? null,
          };
        }),
      ),
    ],
  );
}
