import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn, jsonObjectColumn, textArrayColumn, updatedAtColumn } from './common.js';
import { User } from './User.js';

export const Project = defineEntity({
  name: 'Project',
  tableName: 'projects',
  uniques: [{ properties: ['owner', 'name'] }],
  properties: {
    id: idColumn(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade'),
    name: p.string(),
    description: p.text().default(''),
    tags: textArrayColumn(),
    metadata: jsonObjectColumn(),
    /** Optional JSON schema the metadata of the project's structures must satisfy. */
    metadataSchema: p.json<Record<string, unknown>>().columnType('jsonb').nullable(),
    /** Version pruning: keep the newest N versions of each structure (null: no count rule). */
    pruneKeepLast: p.integer().nullable(),
    /** Version pruning: keep versions younger than D days (null: no age rule). Pinned and current versions are always kept. */
    pruneKeepDays: p.integer().nullable(),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type Project = InferEntity<typeof Project>;
