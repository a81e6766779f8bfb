import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn } from './common.js';
import { User } from './User.js';

/** A bearer token; only its sha256 is stored, the token itself is shown once. */
export const ApiToken = defineEntity({
  name: 'ApiToken',
  tableName: 'api_tokens',
  properties: {
    id: idColumn(),
    user: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    name: p.string().nullable(),
    tokenHash: p.string().length(64).unique(),
    /** First characters of the token, so a user can tell tokens apart in a list. */
    tokenPrefix: p.string().length(16),
    expiresAt: p.datetime().columnType('timestamptz').nullable(),
    revokedAt: p.datetime().columnType('timestamptz').nullable(),
    lastUsedAt: p.datetime().columnType('timestamptz').nullable(),
    /** What the token may do ("read", "write"); null: whatever its user may, administration included. */
    scopes: p.array().columnType('text[]').nullable(),
    /** The only projects the token reaches; null: every project its user may see. */
    projectIds: p.array().columnType('uuid[]').nullable(),
    createdAt: createdAtColumn(),
  },
});
export type ApiToken = InferEntity<typeof ApiToken>;
