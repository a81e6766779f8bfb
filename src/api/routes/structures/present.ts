import type { EntityManager } from '@mikro-orm/postgresql';
import { Blob } from '../../../entities/Blob.js';
import { Structure } from '../../../entities/Structure.js';
import { StructureVersion } from '../../../entities/StructureVersion.js';
import { serializeStructure } from '../../../services/serialize.js';
import { notFound } from '../../errors.js';

/** Structures with their current versions and sizes, in two queries whatever the count. */
export async function presentStructures(em: EntityManager, structures: Structure[]) {
  const versionIds = structures.map((s) => s.currentVersion).filter((v): v is string => !!v);
  const versions = versionIds.length ? await em.find(StructureVersion, { id: { $in: versionIds } }) : [];
  const blobs = versions.length ? await em.find(Blob, { sha256: { $in: versions.map((v) => v.blob) } }) : [];
  const sizes = new Map(blobs.map((b) => [b.sha256, b.size]));
  const byId = new Map(versions.map((v) => [v.id, v]));
  return structures.map((s) => {
    const version = s.currentVersion ? byId.get(s.currentVersion) : undefined;
    return serializeStructure(s, version ? { version, size: sizes.get(version.blob) ?? 0 } : null);
  });
}

export async function presentStructure(em: EntityManager, structureId: string) {
  const structure = await em.findOne(Structure, { id: structureId });
  if (!structure) throw notFound('structure');
  const [presented] = await presentStructures(em, [structure]);
  return presented;
}

interface CardRow {
  id: string;
  project_id: string;
  name: string;
  description: string;
  kind: string;
  tags: string[];
  metadata: Record<string, unknown>;
  view_count: string | number;
  download_count: string | number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
  number: number | null;
  format: string | null;
  blob_sha256: string | null;
  filename: string | null;
  message: string | null;
  author_id: string | null;
  pinned: boolean | null;
  version_created_at: Date | null;
  summary: unknown;
  size: string | number | null;
}

/**
 * Structures as search hits show them: the structure and its current version's record and summary,
 * without the validation warnings (GET /v1/structures/:id has those). One query and no entity
 * building, because a search answers many of these at once and must stay fast.
 */
export async function presentStructureCards(em: EntityManager, ownerId: string, ids: string[]) {
  if (ids.length === 0) return [];
  const rows = await em.execute<CardRow[]>(
    `select s.id, s.project_id, s.name, s.description, s.kind, s.tags, s.metadata, s.view_count, s.download_count,
            s.created_at, s.updated_at, s.deleted_at,
            v.number, v.format, v.blob_sha256, v.filename, v.message, v.author_id, v.pinned, v.created_at as version_created_at,
            v.summary, b.size
       from structures s
       left join structure_versions v on v.id = s.current_version_id
       left join blobs b on b.sha256 = v.blob_sha256
      where s.id in (select jsonb_array_elements_text(?::jsonb)::uuid) and s.owner_id = ?`,
    [JSON.stringify(ids), ownerId],
  );
  return rows.map((row) => ({
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    description: row.description,
    kind: row.kind,
    tags: row.tags,
    metadata: row.metadata,
    currentVersion:
      row.number === null
        ? null
        : {
            number: row.number,
            format: row.format,
            size: Number(row.size ?? 0),
            sha256: row.blob_sha256,
            filename: row.filename,
            message: row.message,
            author: row.author_id,
            pinned: row.pinned,
            createdAt: new Date(row.version_created_at as Date).toISOString(),
            summary: row.summary,
          },
    viewCount: Number(row.view_count),
    downloadCount: Number(row.download_count),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    deletedAt: row.deleted_at ? new Date(row.deleted_at).toISOString() : null,
  }));
}
