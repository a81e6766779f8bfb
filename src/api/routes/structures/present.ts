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
