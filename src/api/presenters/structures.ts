import type { EntityManager } from '@mikro-orm/postgresql';
import { Structure } from '../../entities/Structure.js';
import { StructureVersion } from '../../entities/StructureVersion.js';
import { serializeStructure, serializeVersion } from '../../entities/serialize.js';
import { blobSizes } from '../../services/versions/lookup.js';
import { notFound } from '../errors.js';

/** Structures with their current versions and sizes, in two queries whatever the count. */
export async function presentStructures(em: EntityManager, structures: Structure[]) {
  const versionIds = structures.map((s) => s.currentVersion).filter((v): v is string => !!v);
  const versions = versionIds.length ? await em.find(StructureVersion, { id: { $in: versionIds } }) : [];
  const sizes = await blobSizes(
    em,
    versions.map((v) => v.blob),
  );
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

/** Versions with the sizes of their files, in one query whatever the count. */
export async function presentVersions(em: EntityManager, versions: StructureVersion[]) {
  const sizes = await blobSizes(
    em,
    versions.map((v) => v.blob),
  );
  return versions.map((v) => serializeVersion(v, sizes.get(v.blob) ?? 0));
}

export async function presentVersion(em: EntityManager, version: StructureVersion) {
  const [presented] = await presentVersions(em, [version]);
  return presented;
}
