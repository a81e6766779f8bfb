import type { EntityManager } from '@mikro-orm/postgresql';
import { Structure } from '../entities/Structure.js';
import { StructureVersion } from '../entities/StructureVersion.js';
import type { SearchDocument } from './types.js';

/** Metadata values as words: nested objects and arrays flattened. */
export function flattenMetadata(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap((v) => flattenMetadata(v));
  if (typeof value === 'object') return Object.values(value as Record<string, unknown>).flatMap((v) => flattenMetadata(v));
  return [String(value)];
}

// Summaries are written by the format readers and grow over time: read each field defensively.
const text = (value: unknown): string | undefined => (typeof value === 'string' && value.trim() ? value.trim() : undefined);
const count = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : undefined);
const decimal = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function ligandNames(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const names = value.map((l) => (typeof l === 'string' ? l : text((l as { name?: unknown } | null)?.name))).filter((n): n is string => !!n);
  return [...new Set(names)];
}

/** Organism from the summary (source organism, when a reader extracts it) or from metadata a user gave. */
function organismOf(summary: Record<string, unknown>, metadata: Record<string, unknown>): string | undefined {
  const fromSummary = summary.organism ?? summary.sourceOrganism ?? summary.organismScientific;
  if (Array.isArray(fromSummary)) return text(fromSummary.filter((o) => typeof o === 'string').join(', '));
  return text(fromSummary) ?? text(metadata.organism);
}

/** A multi-record file has no one formula: its distinct formulas (as listed in the summary) are searched instead. */
function recordFormulas(records: unknown): string | undefined {
  const formulas = (records as { formulas?: unknown } | null | undefined)?.formulas;
  return Array.isArray(formulas) ? text(formulas.filter((f) => typeof f === 'string').join(', ')) : undefined;
}

export function buildSearchDocument(structure: Structure, version: StructureVersion | null): SearchDocument {
  const summary = (version?.summary ?? {}) as unknown as Record<string, unknown>;
  const metadata = (structure.metadata ?? {}) as Record<string, unknown>;
  return {
    structureId: structure.id,
    ownerId: structure.owner,
    projectId: structure.project,
    name: structure.name,
    description: structure.description ?? '',
    kind: structure.kind,
    format: version?.format,
    tags: [...new Set(structure.tags ?? [])],
    metadataText: flattenMetadata(metadata),
    // A multi-record file's summary keeps its first record's title apart, labelled as such.
    title: text(summary.title) ?? text((summary.firstRecord as { title?: unknown } | undefined)?.title),
    method: text(summary.method)?.toUpperCase(),
    resolution: decimal(summary.resolution),
    organism: organismOf(summary, metadata),
    pdbId: text(summary.pdbId)?.toUpperCase(),
    formula: text(summary.formula) ?? recordFormulas(summary.records),
    ligands: ligandNames(summary.ligands),
    filename: version?.filename,
    atoms: count(summary.atoms),
    residues: count(summary.residues),
    chains: count(summary.chains),
    deleted: structure.deletedAt !== null && structure.deletedAt !== undefined,
    createdAt: structure.createdAt,
    updatedAt: structure.updatedAt,
  };
}

/** The documents of these structures as they are in Postgres now; ids of purged structures are absent. */
export async function loadSearchDocuments(em: EntityManager, structureIds: string[]): Promise<Map<string, SearchDocument>> {
  if (structureIds.length === 0) return new Map();
  const structures = await em.find(Structure, { id: { $in: structureIds } });
  const versionIds = structures.map((s) => s.currentVersion).filter((v): v is string => !!v);
  const versions = versionIds.length ? await em.find(StructureVersion, { id: { $in: versionIds } }) : [];
  const byId = new Map(versions.map((v) => [v.id, v]));
  return new Map(structures.map((s) => [s.id, buildSearchDocument(s, s.currentVersion ? (byId.get(s.currentVersion) ?? null) : null)]));
}

/** Every structure's document, in batches of `size`, in id order (keyset, so a long run never skips rows). */
export async function* allSearchDocuments(em: EntityManager, size = 500): AsyncGenerator<SearchDocument[]> {
  let after: string | undefined;
  for (;;) {
    const rows = await em.execute<{ id: string }[]>(
      `select id from structures ${after ? 'where id > ?' : ''} order by id limit ?`,
      after ? [after, size] : [size],
    );
    if (rows.length === 0) return;
    after = rows[rows.length - 1].id;
    const documents = await loadSearchDocuments(
      em,
      rows.map((r) => r.id),
    );
    em.clear();
    yield [...documents.values()];
  }
}

/** The fields drift detection compares: what a search can see. Dates to the millisecond. */
export function documentFingerprint(doc: SearchDocument): string {
  return JSON.stringify([
    doc.ownerId,
    doc.projectId,
    doc.name,
    doc.description,
    doc.kind,
    doc.format ?? null,
    [...doc.tags].sort(),
    doc.metadataText,
    doc.title ?? null,
    doc.method ?? null,
    doc.resolution ?? null,
    doc.organism ?? null,
    doc.pdbId ?? null,
    doc.formula ?? null,
    doc.ligands,
    doc.filename ?? null,
    doc.atoms ?? null,
    doc.residues ?? null,
    doc.chains ?? null,
    doc.deleted,
    new Date(doc.createdAt).getTime(),
    new Date(doc.updatedAt).getTime(),
  ]);
}
