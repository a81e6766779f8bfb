import type { Structure } from '../entities/Structure.js';
import type { StructureVersion } from '../entities/StructureVersion.js';
import type { SearchDocument } from '../search/types.js';

/** Metadata values as words: nested objects and arrays flattened, keys kept for context. */
export function flattenMetadata(value: unknown, prefix = ''): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap((v) => flattenMetadata(v, prefix));
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => flattenMetadata(v, prefix ? `${prefix}.${k}` : k));
  }
  return [String(value)];
}

export function buildSearchDocument(structure: Structure, version: StructureVersion | null): SearchDocument {
  const summary = version?.summary;
  return {
    structureId: structure.id,
    ownerId: structure.owner,
    projectId: structure.project,
    name: structure.name,
    description: structure.description,
    kind: structure.kind,
    format: version?.format,
    tags: structure.tags,
    metadataText: flattenMetadata(structure.metadata),
    title: summary?.title,
    method: summary?.method,
    resolution: summary?.resolution,
    pdbId: summary?.pdbId,
    formula: summary?.formula,
    ligands: summary?.ligands?.map((l) => l.name) ?? [],
    filename: version?.filename,
    atoms: summary?.atoms,
    residues: summary?.residues,
    chains: summary?.chains,
    deleted: structure.deletedAt !== null && structure.deletedAt !== undefined,
    createdAt: structure.createdAt,
    updatedAt: structure.updatedAt,
  };
}
