import type { EntityManager } from '@mikro-orm/postgresql';
import { Blob } from '../../entities/Blob.js';
import { Draft } from '../../entities/Draft.js';
import { StructureVersion } from '../../entities/StructureVersion.js';

/** Version `number` of a structure, if it exists. */
export function findVersion(em: EntityManager, structureId: string, number: number): Promise<StructureVersion | null> {
  return em.findOne(StructureVersion, { structure: structureId, number });
}

/** The structure's current version (none before its first upload is stored). */
export async function currentVersion(em: EntityManager, structure: { currentVersion?: string | null }): Promise<StructureVersion | null> {
  return structure.currentVersion ? em.findOne(StructureVersion, { id: structure.currentVersion }) : null;
}

/** Version `number`, or the current one when no number is given. */
export function versionOrCurrent(em: EntityManager, structure: { id: string; currentVersion?: string | null }, number: number | undefined) {
  return number ? findVersion(em, structure.id, number) : currentVersion(em, structure);
}

/** The newest version older than `number`. */
export function versionBefore(em: EntityManager, structureId: string, number: number): Promise<StructureVersion | null> {
  return em.findOne(StructureVersion, { structure: structureId, number: { $lt: number } }, { orderBy: { number: 'desc' } });
}

/** Versions newest first, those older than `before` when given, plus one more when there is a next page. */
export function listVersions(em: EntityManager, structureId: string, page: { limit: number; before?: number }): Promise<StructureVersion[]> {
  const where = page.before ? { structure: structureId, number: { $lt: page.before } } : { structure: structureId };
  return em.find(StructureVersion, where, { orderBy: { number: 'desc' }, limit: page.limit + 1 });
}

/** Sizes of stored blobs by sha256. */
export async function blobSizes(em: EntityManager, sha256s: Iterable<string>): Promise<Map<string, number>> {
  const wanted = [...new Set(sha256s)];
  if (wanted.length === 0) return new Map();
  const blobs = await em.find(Blob, { sha256: { $in: wanted } });
  return new Map(blobs.map((b) => [b.sha256, b.size]));
}

/** The stored blob itself (it exists: versions, drafts and derivations hold their blobs). */
export function storedBlob(em: EntityManager, sha256: string): Promise<Blob> {
  return em.findOneOrFail(Blob, { sha256 });
}

/** The structure's draft, if it has one. */
export function findDraft(em: EntityManager, structureId: string): Promise<Draft | null> {
  return em.findOne(Draft, { structure: structureId });
}
