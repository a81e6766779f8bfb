import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { User } from './User.js';

/**
 * A user's charged bytes (distinct blobs over every blob reference source), as last computed.
 * The quota check reads it under the user's row lock; whatever changes references refreshes it,
 * and the nightly usage job corrects any drift.
 */
export const UserUsage = defineEntity({
  name: 'UserUsage',
  tableName: 'user_usage',
  properties: {
    user: () => p.oneToOne(User).primary().mapToPk().deleteRule('cascade'),
    usedBytes: p.bigint('number').default(0),
    breakdown: p.json<Record<string, number>>().columnType('jsonb').defaultRaw(`'{}'::jsonb`),
    computedAt: p.datetime().columnType('timestamptz'),
  },
});
export type UserUsage = InferEntity<typeof UserUsage>;
