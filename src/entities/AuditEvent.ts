import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn } from './common.js';

/**
 * One security-relevant event (membership, tokens, links, deletes, admin actions). Append-only: a
 * trigger refuses updates, and deletes unless the retention step says it is the one deleting.
 * Actor and target are plain ids, not foreign keys, so the record outlives what it names.
 */
export const AuditEvent = defineEntity({
  name: 'AuditEvent',
  tableName: 'audit_events',
  properties: {
    id: idColumn(),
    createdAt: createdAtColumn(),
    action: p.string(),
    /** Who did it: a user, and the token or share link they used, when there was one. */
    actorUserId: p.uuid().nullable(),
    actorTokenId: p.uuid().nullable(),
    actorLinkId: p.string().nullable(),
    targetType: p.string(),
    targetId: p.string().nullable(),
    projectId: p.uuid().nullable().index(),
    ip: p.string().nullable(),
    userAgent: p.text().nullable(),
    details: p.json<Record<string, unknown>>().columnType('jsonb').defaultRaw(`'{}'::jsonb`),
  },
});
export type AuditEvent = InferEntity<typeof AuditEvent>;
