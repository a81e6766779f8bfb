import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ShareLink } from '../../entities/ShareLink.js';
import type { Structure } from '../../entities/Structure.js';
import { type AuditActor, type AuditOrigin, recordAudit } from '../audit/audit.js';
import { hashLinkPassword } from './passwords.js';

/** 24 random bytes (192 bits), 32 base64url characters: guessing one is infeasible. */
export function newLinkId(): string {
  return randomBytes(24).toString('base64url');
}

/** What a well-formed link id looks like; anything else is refused before Postgres is asked. */
export const LINK_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;

export type LinkState = 'active' | 'expired' | 'revoked';

export function linkState(link: ShareLink, now = Date.now()): LinkState {
  if (link.revokedAt) return 'revoked';
  if (link.expiresAt && link.expiresAt.getTime() <= now) return 'expired';
  return 'active';
}

export interface Audited {
  actor: AuditActor;
  origin: AuditOrigin;
}

/** A new link, recorded with its audit entry in one transaction. */
export async function createShareLink(
  em: EntityManager,
  input: { structure: Structure; createdBy: string; version: number | null; format: string; expiresAt: Date | null; password?: string },
  audited: Audited,
): Promise<ShareLink> {
  const passwordHash = input.password ? await hashLinkPassword(input.password) : null;
  return em.transactional(async (tx) => {
    const link = tx.create(ShareLink, {
      id: newLinkId(),
      structure: input.structure.id,
      createdBy: input.createdBy,
      version: input.version,
      format: input.format,
      passwordHash,
      expiresAt: input.expiresAt,
      revokedAt: null,
      lastUsedAt: null,
    });
    await tx.flush();
    await recordAudit(tx, {
      action: 'link.create',
      ...audited,
      targetType: 'link',
      targetId: link.id,
      projectId: input.structure.project,
      details: { structureId: input.structure.id, version: input.version, format: input.format, expiresAt: input.expiresAt, password: !!passwordHash },
    });
    return link;
  });
}

/** A structure's links, newest first (revoked and expired ones too, with their state). */
export function listShareLinks(em: EntityManager, structureId: string): Promise<ShareLink[]> {
  return em.find(ShareLink, { structure: structureId }, { orderBy: { createdAt: 'desc', id: 'asc' } });
}

export function findShareLink(em: EntityManager, id: string): Promise<ShareLink | null> {
  return LINK_ID_PATTERN.test(id) ? em.findOne(ShareLink, { id }) : Promise.resolve(null);
}

/** Revokes a link at once; revoking a revoked link changes nothing and records nothing. */
export async function revokeShareLink(em: EntityManager, link: ShareLink, projectId: string, audited: Audited): Promise<void> {
  await em.transactional(async (tx) => {
    const revoked = await tx.execute<{ id: string }[]>('update share_links set revoked_at = now() where id = ? and revoked_at is null returning id', [link.id]);
    if (revoked.length === 0) return;
    await recordAudit(tx, { action: 'link.revoke', ...audited, targetType: 'link', targetId: link.id, projectId, details: { structureId: link.structure } });
  });
}

/**
 * Records one use of a link: the page opened (`link.use`), a file downloaded (`link.download`), or a
 * wrong password (`link.password_refused`); the actor is the link itself.
 */
export async function recordLinkEvent(
  em: EntityManager,
  link: ShareLink,
  action: 'link.use' | 'link.download' | 'link.password_refused',
  event: { projectId: string; origin: AuditOrigin; details?: Record<string, unknown> },
): Promise<void> {
  await em.transactional(async (tx) => {
    if (action !== 'link.password_refused') await tx.execute('update share_links set last_used_at = now() where id = ?', [link.id]);
    await recordAudit(tx, {
      action,
      actor: { linkId: link.id },
      origin: event.origin,
      targetType: 'structure',
      targetId: link.structure,
      projectId: event.projectId,
      details: { createdBy: link.createdBy, ...event.details },
    });
  });
}
