import type { EntityManager } from '@mikro-orm/postgresql';
import { Blob } from '../../../entities/Blob.js';
import { Structure } from '../../../entities/Structure.js';
import { StructureVersion } from '../../../entities/StructureVersion.js';
import { serializeStructure } from '../../../entities/serialize.js';
import { STRUCTURE_CARD_JSON } from '../../../search/cards.js';
import type { SearchHit } from '../../../search/types.js';
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

/**
 * Search hits as the API shows them, as JSON text: each structure's card (see search/cards.ts)
 * with the hit's score and highlights, in the hits' order. Only the owner's structures: an index
 * can lag, never leak. One query whatever the count.
 */
export async function presentSearchItems(em: EntityManager, ownerId: string, hits: SearchHit[]): Promise<string> {
  if (hits.length === 0) return '[]';
  const [row] = await em.execute<{ items: string | null }[]>(
    `select '[' || string_agg('{"structure":' || ${STRUCTURE_CARD_JSON} || ',"score":' || to_json(h.score) || ',"highlights":' || h.highlights || '}', ',' order by h.ord) || ']' as items
       from jsonb_to_recordset(?::jsonb) as h(id uuid, score float8, highlights text, ord integer)
       join structures cs on cs.id = h.id and cs.owner_id = ?`,
    [JSON.stringify(hits.map((h, ord) => ({ id: h.structureId, score: h.score, highlights: h.highlights, ord }))), ownerId],
  );
  return row?.items ?? '[]';
}
