import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import type { StructuralDiff } from '../formats/diff.js';
import { Blob } from './Blob.js';
import { createdAtColumn } from './common.js';

/**
 * Cached structural diffs. Blobs are immutable, so a diff keyed by the two hashes and the options
 * never goes stale; rows vanish with either blob (cascade), so the cache holds on to no bytes.
 */
export const VersionDiff = defineEntity({
  name: 'VersionDiff',
  tableName: 'version_diffs',
  properties: {
    /** sha256 of "from hash : to hash : options" */
    key: p.string().length(64).primary(),
    fromBlob: () => p.manyToOne(Blob).mapToPk().deleteRule('cascade').index(),
    toBlob: () => p.manyToOne(Blob).mapToPk().deleteRule('cascade').index(),
    options: p.json<Record<string, number>>().columnType('jsonb'),
    result: p.json<StructuralDiff>().columnType('jsonb'),
    computeMs: p.integer(),
    createdAt: createdAtColumn(),
  },
});
export type VersionDiff = InferEntity<typeof VersionDiff>;
