import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';

/**
 * Which of these contents (sha256 of the unpacked bytes) a project already holds as a live
 * structure's current version: what an import would skip as already_stored. The first structure
 * made with each content is named.
 */
export async function storedContents(em: EntityManager, projectId: string, sha256s: Iterable<string>) {
  const rows = await em.execute<{ sha256: string; id: string; name: string }[]>(
    `select distinct on (v.blob_sha256) v.blob_sha256 as sha256, s.id, s.name
       from structures s join structure_versions v on v.id = s.current_version_id
      where s.project_id = ? and s.deleted_at is null and v.blob_sha256 = any(?::text[])
      order by v.blob_sha256, s.created_at`,
    [projectId, sqlArray(new Set(sha256s))],
  );
  return rows.map((row) => ({ sha256: row.sha256, structureId: row.id, name: row.name }));
}

/**
 * Which of these checksums the project already stores, so a re-run import (the CLI's resume)
 * uploads only what is missing. A checksum is known when it is the sha256 of the raw bytes of an
 * upload stored into a live structure of this project (a `.gz` as sent), or of the content of a
 * live structure's current version (an uncompressed file: the same bytes). Structures in the
 * trash do not count: importing the file again makes it live again as a new structure.
 */
export async function knownChecksums(em: EntityManager, projectId: string, sha256s: string[]): Promise<string[]> {
  if (sha256s.length === 0) return [];
  const list = sqlArray(sha256s);
  const rows = await em.execute<{ sha256: string }[]>(
    `select u.received_sha256 as sha256
       from uploads u join structures s on s.id = u.structure_id
      where u.project_id = ? and u.state = 'stored' and s.project_id = ? and s.deleted_at is null
        and u.received_sha256 = any(?::text[])
     union
     select v.blob_sha256 as sha256
       from structures s join structure_versions v on v.id = s.current_version_id
      where s.project_id = ? and s.deleted_at is null
        and v.blob_sha256 = any(?::text[])`,
    [projectId, projectId, list, projectId, list],
  );
  return rows.map((row) => row.sha256);
}

/** A content the project refused before, with the refusal as it was given. */
export interface RefusedContent {
  sha256: string;
  code: string | null;
  message: string | null;
}

/**
 * Which of these checksums (of the bytes as sent) the project refused before for the file's own
 * fault (`rejected`, never an infrastructure `failed`): the latest refusal of each, from single
 * uploads and import items alike. A re-run import reports them without sending them again.
 */
export async function refusedChecksums(em: EntityManager, projectId: string, sha256s: string[]): Promise<RefusedContent[]> {
  if (sha256s.length === 0) return [];
  const list = sqlArray(sha256s);
  const rows = await em.execute<{ sha256: string; error: { code?: string; message?: string } | null }[]>(
    `select distinct on (sha256) sha256, error
       from (select u.received_sha256 as sha256, u.error, u.updated_at
               from uploads u
              where u.project_id = ? and u.state = 'rejected' and u.received_sha256 = any(?::text[])
             union all
             select i.received_sha256, i.error, i.updated_at
               from import_items i join import_batches b on b.id = i.batch_id
              where b.project_id = ? and i.state = 'rejected' and i.received_sha256 = any(?::text[])) refused
      order by sha256, updated_at desc`,
    [projectId, list, projectId, list],
  );
  return rows.map((row) => ({ sha256: row.sha256, code: row.error?.code ?? null, message: row.error?.message ?? null }));
}
