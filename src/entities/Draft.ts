import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { Blob } from './Blob.js';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { Structure } from './Structure.js';
import { User } from './User.js';

/**
 * The autosaved draft of a structure: at most one per structure, replaced by every save, never a
 * version until checkpointed. Its blob counts as `drafts` in usage (see blobReferences.ts).
 */
export const Draft = defineEntity({
  name: 'Draft',
  tableName: 'drafts',
  properties: {
    id: idColumn(),
    structure: () => p.manyToOne(Structure).mapToPk().unique().deleteRule('cascade'),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    blob: () => p.manyToOne(Blob).mapToPk().index(),
    format: p.string(),
    filename: p.string(),
    size: p.bigint('number'),
    /** The upload a checkpoint of this very content started, so a repeated checkpoint makes no second version. */
    checkpointUpload: p.uuid().nullable(),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type Draft = InferEntity<typeof Draft>;
