import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';

/** Every action the audit log records. Adding one here is how a new audited action is named. */
export const AUDIT_ACTIONS = [
  'team.create',
  'team.delete',
  'team.member.add',
  'team.member.role',
  'team.member.remove',
  'project.member.add',
  'project.member.role',
  'project.member.remove',
  'project.owner.transfer',
  'project.delete',
  'token.create',
  'token.revoke',
  'link.create',
  'link.use',
  'link.revoke',
  'link.password_refused',
  'link.download',
  'signed_url.issue',
  'signed_url.download',
  'structure.delete',
  'structure.restore',
  'structure.purge',
  'structure.rollback',
  'admin.user.create',
  'admin.user.update',
  'admin.quota.update',
  'admin.backup.create',
  'admin.backup.verify',
  'admin.backup.restore',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who acted: the user, and the token or share link the request carried. */
export interface AuditActor {
  userId?: string | null;
  tokenId?: string | null;
  linkId?: string | null;
}

/** Where the request came from. */
export interface AuditOrigin {
  ip?: string | null;
  userAgent?: string | null;
}

export interface AuditEntry {
  action: AuditAction;
  actor: AuditActor;
  origin?: AuditOrigin;
  targetType: string;
  targetId?: string | null;
  projectId?: string | null;
  details?: Record<string, unknown>;
}

const USER_AGENT_MAX = 512;

/**
 * Appends one event. Call it inside the transaction of the change it records (pass that
 * transaction's entity manager), so the change and its record commit or roll back together.
 */
export async function recordAudit(em: EntityManager, entry: AuditEntry): Promise<void> {
  await em.execute(
    `insert into audit_events (id, action, actor_user_id, actor_token_id, actor_link_id, target_type, target_id, project_id, ip, user_agent, details)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb)`,
    [
      randomUUID(),
      entry.action,
      entry.actor.userId ?? null,
      entry.actor.tokenId ?? null,
      entry.actor.linkId ?? null,
      entry.targetType,
      entry.targetId ?? null,
      entry.projectId ?? null,
      entry.origin?.ip ?? null,
      entry.origin?.userAgent ? entry.origin.userAgent.slice(0, USER_AGENT_MAX) : null,
      JSON.stringify(entry.details ?? {}),
    ],
  );
}

/** Deletes events older than `days` (the only delete the append-only trigger lets through). */
export async function expireAuditEvents(em: EntityManager, days: number, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - days * 86_400_000);
  return em.transactional(async (tx) => {
    await tx.execute(`select set_config('molvault.audit_retention', 'on', true)`);
    const rows = await tx.execute<{ n: string }[]>('with gone as (delete from audit_events where created_at < ? returning 1) select count(*) as n from gone', [
      cutoff,
    ]);
    return Number(rows[0]?.n ?? 0);
  });
}
