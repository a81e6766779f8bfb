import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { User } from './User.js';

/** A group of users that can be given a role in projects at once (a lab, a collaboration). */
export const Team = defineEntity({
  name: 'Team',
  tableName: 'teams',
  properties: {
    id: idColumn(),
    name: p.string(),
    createdBy: () => p.manyToOne(User).mapToPk().nullable().deleteRule('set null'),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type Team = InferEntity<typeof Team>;
