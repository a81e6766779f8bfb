import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn } from './common.js';

/** A key that signs download URLs, generated when SIGNING_KEYS configures none (see services/sharing/keys.ts). */
export const SigningKey = defineEntity({
  name: 'SigningKey',
  tableName: 'signing_keys',
  properties: {
    kid: p.string().primary(),
    secret: p.string().hidden(),
    createdAt: createdAtColumn(),
  },
});
export type SigningKey = InferEntity<typeof SigningKey>;
