import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn } from './common.js';
import { Structure } from './Structure.js';
import { User } from './User.js';

/**
 * A share link: its id is the secret in the URL (random, 192 bits). It serves one structure, one
 * version or whichever is current, in one format, until it expires or is revoked, and only while
 * the user who made it may still read the structure.
 */
export const ShareLink = defineEntity({
  name: 'ShareLink',
  tableName: 'share_links',
  properties: {
    id: p.string().primary(),
    structure: () => p.manyToOne(Structure).mapToPk().deleteRule('cascade'),
    createdBy: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    /** A fixed version number; null follows the current version. */
    version: p.integer().nullable(),
    /** `original` or a format name (then a conversion is served). */
    format: p.string().default('original'),
    /** scrypt hash (`scrypt$N$r$p$salt$hash`); null when the link needs no password. */
    passwordHash: p.string().nullable().hidden(),
    expiresAt: p.datetime().columnType('timestamptz').nullable(),
    revokedAt: p.datetime().columnType('timestamptz').nullable(),
    lastUsedAt: p.datetime().columnType('timestamptz').nullable(),
    createdAt: createdAtColumn(),
  },
});
export type ShareLink = InferEntity<typeof ShareLink>;
