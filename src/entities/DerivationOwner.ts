import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn } from './common.js';
import { Derivation } from './Derivation.js';
import { User } from './User.js';

/**
 * Who asked for a derivative. A derivative is shared by everyone who holds its source bytes, but
 * counts in a user's usage (as `derived`) only once that user has downloaded it: nobody pays for a
 * conversion someone else asked for.
 */
export const DerivationOwner = defineEntity({
  name: 'DerivationOwner',
  tableName: 'derivation_owners',
  properties: {
    derivation: () => p.manyToOne(Derivation).mapToPk().primary().deleteRule('cascade'),
    owner: () => p.manyToOne(User).mapToPk().primary().deleteRule('cascade').index(),
    createdAt: createdAtColumn(),
  },
});
export type DerivationOwner = InferEntity<typeof DerivationOwner>;
