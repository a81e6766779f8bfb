import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn } from './common.js';
import { Structure } from './Structure.js';
import { User } from './User.js';

export const RELATIONSHIP_TYPES = ['derived-from', 'ligand-of', 'related'] as const;
export type RelationshipType = (typeof RELATIONSHIP_TYPES)[number];

/** A typed link from one structure (source) to another of the same owner (target). */
export const Relationship = defineEntity({
  name: 'Relationship',
  tableName: 'relationships',
  uniques: [{ properties: ['source', 'target', 'type'] }],
  properties: {
    id: idColumn(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    source: () => p.manyToOne(Structure).mapToPk().deleteRule('cascade'),
    target: () => p.manyToOne(Structure).mapToPk().deleteRule('cascade').index(),
    type: p.enum(RELATIONSHIP_TYPES),
    createdAt: createdAtColumn(),
  },
});
export type Relationship = InferEntity<typeof Relationship>;
