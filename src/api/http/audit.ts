import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { type AuditActor, type AuditEntry, type AuditOrigin, recordAudit } from '../../services/audit/audit.js';

/**
 * Who is acting and from where, as the audit log records it: the authenticated user, the token
 * (`ctx.state.tokenId`) or share link (`ctx.state.linkId`) the request carried, its IP and user agent.
 */
export function auditFrom(koa: Context): { actor: AuditActor; origin: AuditOrigin } {
  const state = koa.state as { user?: { id: string }; tokenId?: string; linkId?: string };
  return {
    actor: { userId: state.user?.id ?? null, tokenId: state.tokenId ?? null, linkId: state.linkId ?? null },
    origin: { ip: koa.ip || null, userAgent: koa.get('user-agent') || null },
  };
}

/** Records one audit event of this request (actor and origin from the request), in `em`'s transaction. */
export function auditRequest(em: EntityManager, koa: Context, entry: Omit<AuditEntry, 'actor' | 'origin'>): Promise<void> {
  return recordAudit(em, { ...entry, ...auditFrom(koa) });
}
