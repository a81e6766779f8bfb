import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn } from './common.js';

/** Immutable content-addressed bytes; the key is the sha256 of the uncompressed content. */
export const Blob = defineEntity({
  name: 'Blob',
  tableName: 'blobs',
  properties: {
    sha256: p.string().length(64).primary(),
    size: p.bigint('number'),
    storedSize: p.bigint('number'),
    mediaType: p.string().default('application/octet-stream'),
    createdAt: createdAtColumn(),
    /** When garbage collection first found nothing referring to the blob; cleared when it is referenced again. */
    orphanedAt: p.datetime().columnType('timestamptz').nullable(),
  },
});
export type Blob = InferEntity<typeof Blob>;
