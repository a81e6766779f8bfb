import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import type { ExportArchive } from '../../entities/ExportArchive.js';
import type { Format } from '../../formats/types.js';
import { type ExportManifest, MANIFEST_VERSION, type ManifestStructure } from './manifest.js';

/** A stored version that goes into an export. */
export interface ExportVersion {
  id: string;
  number: number;
  sha256: string;
  size: number;
  format: Format;
  /** CIF dialect from the parsed summary (coreCIF, chemical component), which decides the engine. */
  dialect?: string;
  filename: string;
  message: string | null;
  pinned: boolean;
  current: boolean;
  createdAt: Date;
  /** The uploading user's id (null when that user is gone). */
  author: string | null;
}

/** A relationship from an exported structure to another structure of the same export. */
export interface ExportRelationship {
  type: string;
  targetId: string;
  createdAt: Date;
}

export interface ExportStructure {
  id: string;
  projectId: string;
  name: string;
  description: string;
  kind: string;
  tags: string[];
  metadata: Record<string, unknown>;
  createdAt: Date;
  /** Oldest first. */
  versions: ExportVersion[];
  /** Outgoing relationships to structures the export also holds. */
  relationships: ExportRelationship[];
}

export interface ExportProject {
  id: string;
  name: string;
  description: string;
  tags: string[];
  metadata: Record<string, unknown>;
}

export interface ExportContent {
  project: ExportProject | null;
  structures: ExportStructure[];
  /** Selected structure ids that are no longer the owner's live structures (purged or trashed since). */
  missing: string[];
}

/** What one version became in the archive: its bytes (a stored blob) and where they go. */
export interface ExportedFile {
  structure: ExportStructure;
  version: ExportVersion;
  path: string;
  sha256: string;
  size: number;
  format: Format;
  conversion: { engine: string; engineVersion: string | null } | null;
}

async function findProject(em: EntityManager, ownerId: string, projectId: string): Promise<ExportProject | null> {
  const [row] = await em.execute<{ id: string; name: string; description: string; tags: string[]; metadata: Record<string, unknown> }[]>(
    'select id, name, description, tags, metadata from projects where id = ? and owner_id = ?',
    [projectId, ownerId],
  );
  return row ? { id: row.id, name: row.name, description: row.description, tags: row.tags ?? [], metadata: row.metadata ?? {} } : null;
}

/**
 * What an export holds, read from Postgres when the job runs: the owner's live (not trashed)
 * structures of the project or the selection, oldest first, each with its current version or all
 * of its versions, oldest first. A selection whose structures all sit in one project names it.
 */
export async function collectExportContent(
  em: EntityManager,
  exportRow: Pick<ExportArchive, 'owner' | 'project' | 'selection' | 'versions'>,
): Promise<ExportContent> {
  const owner = exportRow.owner;
  const selection = exportRow.selection ?? null;
  const structureRows = await em.execute<
    {
      id: string;
      project_id: string;
      name: string;
      description: string;
      kind: string;
      tags: string[];
      metadata: Record<string, unknown>;
      created_at: Date;
      current_version_id: string | null;
    }[]
  >(
    `select id, project_id, name, description, kind, tags, metadata, created_at, current_version_id
       from structures
      where owner_id = ? and deleted_at is null and ${selection ? 'id = any(?::uuid[])' : 'project_id = ?'}
      order by created_at, id`,
    [owner, selection ? sqlArray(selection) : exportRow.project],
  );
  const versionRows =
    structureRows.length === 0
      ? []
      : await em.execute<
          {
            id: string;
            structure_id: string;
            number: number;
            blob_sha256: string;
            size: string;
            format: string;
            dialect: string | null;
            filename: string;
            message: string | null;
            pinned: boolean;
            created_at: Date;
            author_id: string | null;
          }[]
        >(
          `select v.id, v.structure_id, v.number, v.blob_sha256, b.size, v.format, v.summary->>'dialect' as dialect,
                  v.filename, v.message, v.pinned, v.created_at, v.author_id
             from structure_versions v
             join structures s on s.id = v.structure_id
             join blobs b on b.sha256 = v.blob_sha256
            where v.structure_id = any(?::uuid[]) ${exportRow.versions === 'current' ? 'and v.id = s.current_version_id' : ''}
            order by v.structure_id, v.number`,
          [sqlArray(structureRows.map((s) => s.id))],
        );
  const versionsOf = new Map<string, ExportVersion[]>();
  const currentOf = new Map(structureRows.map((s) => [s.id, s.current_version_id]));
  for (const row of versionRows) {
    const list = versionsOf.get(row.structure_id) ?? [];
    list.push({
      id: row.id,
      number: row.number,
      sha256: row.blob_sha256,
      size: Number(row.size),
      format: row.format as Format,
      dialect: row.dialect ?? undefined,
      filename: row.filename,
      message: row.message,
      pinned: row.pinned,
      current: currentOf.get(row.structure_id) === row.id,
      createdAt: new Date(row.created_at),
      author: row.author_id,
    });
    versionsOf.set(row.structure_id, list);
  }
  const structureIds = sqlArray(structureRows.map((s) => s.id));
  const relationshipRows =
    structureRows.length === 0
      ? []
      : await em.execute<{ source_id: string; target_id: string; type: string; created_at: Date }[]>(
          `select source_id, target_id, type, created_at from relationships
            where source_id = any(?::uuid[]) and target_id = any(?::uuid[]) order by created_at, id`,
          [structureIds, structureIds],
        );
  const relationshipsOf = new Map<string, ExportRelationship[]>();
  for (const row of relationshipRows) {
    const list = relationshipsOf.get(row.source_id) ?? [];
    list.push({ type: row.type, targetId: row.target_id, createdAt: new Date(row.created_at) });
    relationshipsOf.set(row.source_id, list);
  }
  const structures: ExportStructure[] = structureRows
    .map((row) => ({
      id: row.id,
      projectId: row.project_id,
      name: row.name,
      description: row.description ?? '',
      kind: row.kind,
      tags: row.tags ?? [],
      metadata: row.metadata ?? {},
      createdAt: new Date(row.created_at),
      versions: versionsOf.get(row.id) ?? [],
      relationships: relationshipsOf.get(row.id) ?? [],
    }))
    // A structure exists only with a version; one without is mid-purge and has nothing to export.
    .filter((s) => s.versions.length > 0);
  const projectIds = [...new Set(structures.map((s) => s.projectId))];
  const projectId = selection ? (projectIds.length === 1 ? projectIds[0] : null) : exportRow.project;
  const found = new Set(structureRows.map((s) => s.id));
  return {
    project: projectId ? await findProject(em, owner, projectId) : null,
    structures,
    missing: selection ? selection.filter((id) => !found.has(id)) : [],
  };
}

/** A name safe in any file system and archive tool: letters, digits, dot, dash, underscore; never empty or hidden. */
export function safeName(name: string, fallback = 'structure', maxLength = 60): string {
  const cleaned = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, maxLength)
    .replace(/[._-]+$/, '');
  return cleaned || fallback;
}

/**
 * Folders per structure, readable and unique: `structures/<safe name>--<first 8 of the id>`, or
 * the whole id in the unlikely case two structures of one export share the first 8 characters.
 */
export function structureFolders(structures: ExportStructure[]): Map<string, string> {
  const folders = new Map<string, string>();
  const taken = new Set<string>();
  for (const structure of structures) {
    let folder = `structures/${safeName(structure.name)}--${structure.id.slice(0, 8)}`;
    if (taken.has(folder.toLowerCase())) folder = `structures/${safeName(structure.name)}--${structure.id}`;
    taken.add(folder.toLowerCase());
    folders.set(structure.id, folder);
  }
  return folders;
}

/** The path of one version's file: `<folder>/v<number>.<format>`. */
export function versionPath(folder: string, number: number, format: Format): string {
  return `${folder}/v${number}.${format}`;
}

/**
 * The manifest (src/services/exports/manifest.ts) of an export: the project, every structure with
 * its exported versions in order, and every file with its sha256. `exportedAt` is the export's
 * creation time, so writing the same export again gives the same manifest.
 */
export function buildManifest(
  exportRow: Pick<ExportArchive, 'id' | 'format' | 'versions' | 'createdAt'>,
  content: ExportContent,
  files: ExportedFile[],
): ExportManifest {
  const byVersion = new Map(files.map((file) => [file.version.id, file]));
  const structures: ManifestStructure[] = [];
  for (const structure of content.structures) {
    const versions = structure.versions.flatMap((version) => {
      const file = byVersion.get(version.id);
      if (!file) return [];
      return [
        {
          number: version.number,
          path: file.path,
          format: file.format,
          size: file.size,
          sha256: file.sha256,
          originalFormat: version.format,
          originalSha256: version.sha256,
          filename: version.filename,
          message: version.message,
          pinned: version.pinned,
          current: version.current,
          createdAt: version.createdAt.toISOString(),
          author: version.author,
          conversion: file.conversion,
        },
      ];
    });
    if (versions.length === 0) continue;
    structures.push({
      id: structure.id,
      name: structure.name,
      description: structure.description,
      kind: structure.kind,
      tags: structure.tags,
      metadata: structure.metadata,
      createdAt: structure.createdAt.toISOString(),
      versions,
      relationships: structure.relationships.map((r) => ({ type: r.type, targetId: r.targetId, createdAt: r.createdAt.toISOString() })),
    });
  }
  return {
    molvault: MANIFEST_VERSION,
    exportId: exportRow.id,
    exportedAt: exportRow.createdAt.toISOString(),
    project: content.project,
    format: exportRow.format as ExportManifest['format'],
    versions: exportRow.versions,
    structures,
    files: files.map((file) => ({ path: file.path, size: file.size, sha256: file.sha256 })),
  };
}

/**
 * Bytes of the distinct stored files an export of these structures would read, summed in
 * Postgres (what the API checks against the quota before accepting an export).
 */
export async function estimateExportBytes(
  em: EntityManager,
  scope: { owner: string; project: string | null; selection: string[] | null; versions: 'current' | 'all' },
): Promise<{ bytes: number; structures: number; versions: number }> {
  const [row] = await em.execute<{ bytes: string | null; structures: string; versions: string }[]>(
    `with chosen as (
       select v.structure_id, v.blob_sha256
         from structure_versions v join structures s on s.id = v.structure_id
        where s.owner_id = ? and s.deleted_at is null and ${scope.selection ? 's.id = any(?::uuid[])' : 's.project_id = ?'}
              ${scope.versions === 'current' ? 'and v.id = s.current_version_id' : ''})
     select (select sum(b.size) from blobs b where b.sha256 in (select blob_sha256 from chosen)) as bytes,
            (select count(distinct structure_id) from chosen) as structures,
            (select count(*) from chosen) as versions`,
    [scope.owner, scope.selection ? sqlArray(scope.selection) : scope.project],
  );
  return { bytes: Number(row?.bytes ?? 0), structures: Number(row?.structures ?? 0), versions: Number(row?.versions ?? 0) };
}
