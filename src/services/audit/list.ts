import type { EntityManager } from '@mikro-orm/postgresql';
import { AUDIT_ACTIONS, type AuditAction } from './audit.js';

export interface AuditFilter {
  projectId?: string;
  action?: AuditAction;
  actorUserId?: string;
  targetId?: string;
  since?: Date;
  until?: Date;
}

export interface AuditEventView {
  id: string;
  createdAt: string;
  action: string;
  actor: { userId: string | null; tokenId: string | null; linkId: string | null };
  target: { type: string; id: string | null };
  projectId: string | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

export const isAuditAction = (value: string): value is AuditAction => (AUDIT_ACTIONS as readonly string[]).includes(value);

/** A page of audit events, newest first, after the keyset `before` ([created_at, id] of the last one shown), plus one more when there is a next page. */
export async function listAuditEvents(
  em: EntityManager,
  filter: AuditFilter,
  page: { limit: number; before?: { createdAt: string; id: string } },
): Promise<AuditEventView[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    where.push(sql);
    params.push(value);
  };
  if (filter.projectId) add('project_id = ?', filter.projectId);
  if (filter.action) add('action = ?', filter.action);
  if (filter.actorUserId) add('actor_user_id = ?', filter.actorUserId);
  if (filter.targetId) add('target_id = ?', filter.targetId);
  if (filter.since) add('created_at >= ?', filter.since);
  if (filter.until) add('created_at < ?', filter.until);
  if (page.before) {
    where.push('(created_at, id) < (?::timestamptz, ?::uuid)');
    params.push(page.before.createdAt, page.before.id);
  }
  const rows = await em.execute<
    {
      id: string;
      created_at: Date;
      action: string;
      actor_user_id: string | null;
      actor_token_id: string | null;
      actor_link_id: string | null;
      target_type: string;
      target_id: string | null;
      project_id: string | null;
      ip: string | null;
      user_agent: string | null;
      details: Record<string, unknown>;
    }[]
  >(`select * from audit_events ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id desc limit ?`, [...params, page.limit + 1]);
  return rows.map((r) => ({
    id: r.id,
    createdAt: new Date(r.created_at).toISOString(),
    action: r.action,
    actor: { userId: r.actor_user_id, tokenId: r.actor_token_id, linkId: r.actor_link_id },
    target: { type: r.target_type, id: r.target_id },
    projectId: r.project_id,
    ip: r.ip,
    userAgent: r.user_agent,
    details: r.details,
  }));
}
