import type { Relationship } from '../../entities/Relationship.js';

/** A link seen from the structure `from`: it is the source (outgoing) or the target (incoming). */
export function presentRelationship(relationship: Relationship, from: string) {
  return {
    id: relationship.id,
    type: relationship.type,
    sourceId: relationship.source,
    targetId: relationship.target,
    direction: relationship.source === from ? ('outgoing' as const) : ('incoming' as const),
    createdAt: relationship.createdAt.toISOString(),
  };
}
