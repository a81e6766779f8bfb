/**
 * What an export archive's manifest holds beyond the files, put back exactly: each version's
 * number (gaps included: 1, 3, 4 stay 1, 3, 4), creation time and author; the structure's creation
 * time; the relationships between the restored structures; and the exported project's
 * description, tags and metadata on a project that has none of its own yet. Every step is an
 * idempotent update, so a repeated delivery changes nothing more.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import type { ImportRestore } from '../../entities/ImportItem.js';
import type { ExportManifest } from '../exports/manifest.js';

/**
 * After the upload of a restored version is stored (as the structure's next number, now, by the
 * importing user): its manifest number, creation time and author (when that user exists here).
 */
export async function restoreVersionHistory(em: EntityManager, uploadId: string, structureId: string, restore: ImportRestore): Promise<void> {
  await em.execute(
    `update structure_versions v
        set number = ?,
            created_at = coalesce(?::timestamptz, v.created_at),
            author_id = coalesce((select u.id from users u where u.id = ?::uuid), v.author_id)
      where v.upload = ? and v.structure_id = ?`,
    [restore.number, restore.createdAt ?? null, restore.author ?? null, uploadId, structureId],
  );
  await em.execute('update uploads set version = ? where id = ?', [restore.number, uploadId]);
  if (restore.order === 0 && restore.structureCreatedAt) {
    await em.execute('update structures set created_at = ?::timestamptz where id = ?', [restore.structureCreatedAt, structureId]);
  }
}

/**
 * Once every structure of the batch is restored: the relationships the manifest records between
 * them, as the batch's owner's. Returns the structures that gained one (to reindex).
 */
export async function restoreRelationships(em: EntityManager, batchId: string): Promise<string[]> {
  const rows = await em.execute<{ source_id: string; type: string; target_id: string; created_at: string }[]>(
    `with restored as (
       select distinct restore->>'key' as key, (restore->>'structureId')::uuid as structure_id
         from import_items where batch_id = ? and restore is not null and state = 'stored'
     ), wanted as (
       select (i.restore->>'structureId')::uuid as source_id, r->>'type' as type, r->>'targetKey' as target_key, r->>'createdAt' as created_at
         from import_items i, jsonb_array_elements(i.restore->'relationships') r
        where i.batch_id = ? and i.restore->'relationships' is not null
     )
     insert into relationships (id, owner_id, source_id, target_id, type, created_at)
     select gen_random_uuid(), b.owner_id, w.source_id, t.structure_id, w.type, w.created_at::timestamptz
       from wanted w
       join restored t on t.key = w.target_key
       join structures s on s.id = w.source_id
       join import_batches b on b.id = ?
     on conflict (source_id, target_id, type) do nothing
     returning source_id, type, target_id, created_at`,
    [batchId, batchId, batchId],
  );
  return [...new Set(rows.flatMap((r) => [r.source_id, r.target_id]))];
}

/** The exported project's description, tags and metadata, on a target project that has none of them yet (never over a user's own). */
export async function restoreProjectFields(em: EntityManager, projectId: string, project: ExportManifest['project']): Promise<void> {
  if (!project) return;
  await em.execute(
    `update projects set
        description = case when description = '' then ? else description end,
        tags = case when cardinality(tags) = 0 then ?::text[] else tags end,
        metadata = case when metadata = '{}'::jsonb then ?::jsonb else metadata end,
        updated_at = now()
      where id = ? and (description = '' or cardinality(tags) = 0 or metadata = '{}'::jsonb)`,
    [project.description, sqlArray(project.tags), JSON.stringify(project.metadata), projectId],
  );
}
