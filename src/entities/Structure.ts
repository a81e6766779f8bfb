import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn, jsonObjectColumn, textArrayColumn, updatedAtColumn } from './common.js';
import { Project } from './Project.js';
import { StructureVersion } from './StructureVersion.js';
import { User } from './User.js';

export const STRUCTURE_KINDS = ['macromolecule', 'small-molecule', 'session', 'other'] as const;
export type StructureKind = (typeof STRUCTURE_KINDS)[number];

export const Structure = defineEntity({
  name: 'Structure',
  tableName: 'structures',
  indexes: [{ properties: ['owner', 'createdAt'] }, { properties: ['owner', 'deletedAt'] }],
  properties: {
    id: idColumn(),
    project: () => p.manyToOne(Project).mapToPk().deleteRule('cascade').index(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade'),
    name: p.string(),
    description: p.text().default(''),
    kind: p.enum(STRUCTURE_KINDS).default('other'),
    tags: textArrayColumn(),
    metadata: jsonObjectColumn(),
    currentVersion: () => p.manyToOne(StructureVersion).mapToPk().nullable().deleteRule('set null'),
    deletedAt: p.datetime().columnType('timestamptz').nullable(),
    viewCount: p.bigint('number').default(0),
    downloadCount: p.bigint('number').default(0),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
    /**
     * The structure as search hits show it, kept by triggers (see search/cards.ts); never
     * written here, and lazy so that loading a structure does not read it.
     */
    cardMembers: p.text().lazy().nullable().hidden(),
  },
});
export type Structure = InferEntity<typeof Structure>;
