import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import type { StructureSummary, ValidationReport } from '../formats/types.js';
import { Blob } from './Blob.js';
import { createdAtColumn, idColumn } from './common.js';
import { Structure } from './Structure.js';
import { User } from './User.js';

export const StructureVersion = defineEntity({
  name: 'StructureVersion',
  tableName: 'structure_versions',
  // The unique pair is what makes two concurrent snapshots unable to share a number.
  uniques: [{ properties: ['structure', 'number'] }],
  properties: {
    id: idColumn(),
    structure: () => p.manyToOne(Structure).mapToPk().deleteRule('cascade'),
    number: p.integer(),
    blob: () => p.manyToOne(Blob).mapToPk().index(),
    format: p.string(),
    filename: p.string(),
    message: p.text().nullable(),
    author: () => p.manyToOne(User).mapToPk().nullable().deleteRule('set null'),
    summary: p.json<StructureSummary>().columnType('jsonb'),
    validation: p.json<ValidationReport>().columnType('jsonb'),
    pinned: p.boolean().default(false),
    /** The upload that made this version; unique so a replayed snapshot cannot make a second one. */
    upload: p.uuid().nullable().unique(),
    createdAt: createdAtColumn(),
  },
});
export type StructureVersion = InferEntity<typeof StructureVersion>;
