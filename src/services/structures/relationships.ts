import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Relationship, type RelationshipType } from '../../entities/Relationship.js';

/** Links `source` to `target`; undefined when the same link exists. */
export async function linkStructures(
  em: EntityManager,
  input: { owner: string; source: string; target: string; type: RelationshipType },
): Promise<Relationship | undefined> {
  const relationship = em.create(Relationship, input);
  try {
    await em.flush();
    return relationship;
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) return undefined;
    throw error;
  }
}

/** A structure's links, both directions, oldest first (of one type, if given). */
export function relationshipsOf(em: EntityManager, structureId: string, type?: RelationshipType): Promise<Relationship[]> {
  const where = { $or: [{ source: structureId }, { target: structureId }], ...(type ? { type } : {}) };
  return em.find(Relationship, where, { orderBy: { createdAt: 'asc', id: 'asc' } });
}

/** Removes a link of this structure (either direction; the caller may change it); false when there is none. */
export async function unlink(em: EntityManager, structureId: string, relationshipId: string): Promise<boolean> {
  const removed = await em.nativeDelete(Relationship, {
    id: relationshipId,
    $or: [{ source: structureId }, { target: structureId }],
  });
  return removed > 0;
}
