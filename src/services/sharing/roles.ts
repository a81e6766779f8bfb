import type { EntityManager } from '@mikro-orm/postgresql';
import { PROJECT_ROLES, type ProjectRole } from '../../entities/ProjectMember.js';
import type { TokenGrant } from '../auth/grant.js';
import type { Visibility } from '../auth/visibility.js';

/** A role's rank (viewer 1, editor 2, owner 3); 0 is no role at all. */
export const roleRank = (role: ProjectRole): number => PROJECT_ROLES.indexOf(role) + 1;
export const rankRole = (rank: number): ProjectRole | undefined => PROJECT_ROLES[rank - 1];

const RANK_SQL = `case m.role when 'owner' then 3 when 'editor' then 2 else 1 end`;
/** The memberships that apply to user $1: their own and their teams'. */
const MEMBERSHIP_OF_USER = `(m.user_id = ? or m.team_id in (select tm.team_id from team_members tm where tm.user_id = ?))`;

/**
 * The caller's effective role in a project: owner of record, or the highest of their direct and
 * team memberships; 0 when they have none (the project is then invisible to them).
 */
export async function projectRank(em: EntityManager, userId: string, projectId: string, ownerId?: string): Promise<number> {
  if (ownerId === userId) return 3;
  const [row] = await em.execute<{ rank: number | null }[]>(
    `select case when p.owner_id = ? then 3 else (select max(${RANK_SQL}) from project_members m where m.project_id = p.id and ${MEMBERSHIP_OF_USER}) end as rank
     from projects p where p.id = ?`,
    [userId, userId, userId, projectId],
  );
  return Number(row?.rank ?? 0);
}

/** Projects of other owners shared with the user (directly or through a team), each with its owner of record. */
async function sharedProjects(em: EntityManager, userId: string): Promise<{ projectId: string; ownerId: string }[]> {
  const rows = await em.execute<{ project_id: string; owner_id: string }[]>(
    `select distinct p.id as project_id, p.owner_id from project_members m join projects p on p.id = m.project_id
     where ${MEMBERSHIP_OF_USER} and p.owner_id <> ? order by 1`,
    [userId, userId, userId],
  );
  return rows.map((r) => ({ projectId: r.project_id, ownerId: r.owner_id }));
}

/**
 * Memberships are read for every list and search: kept for a moment per user, and forgotten in this
 * process whenever a membership, a team or an ownership changes here (other processes see a change
 * within SHARES_CACHE_MS).
 */
const SHARES_CACHE_MS = 2_000;
const SHARES_CACHE_MAX = 10_000;
const sharesCache = new Map<string, { shared: { projectId: string; ownerId: string }[]; until: number }>();

export function forgetCachedShares(): void {
  sharesCache.clear();
}

async function cachedShares(em: EntityManager, userId: string) {
  const now = Date.now();
  const hit = sharesCache.get(userId);
  if (hit && hit.until > now) return hit.shared;
  const shared = await sharedProjects(em, userId);
  if (sharesCache.size >= SHARES_CACHE_MAX) sharesCache.clear();
  sharesCache.set(userId, { shared, until: now + SHARES_CACHE_MS });
  return shared;
}

/** What this user, through this token, may see. */
export async function visibilityFor(em: EntityManager, userId: string, grant?: TokenGrant): Promise<Visibility> {
  const shared = await cachedShares(em, userId);
  if (!grant?.projectIds) return { userId, allOwn: true, projectIds: shared.map((s) => s.projectId), shared };
  const limit = new Set(grant.projectIds);
  const own = await em.execute<{ id: string }[]>('select id from projects where owner_id = ? and id = any(?::uuid[])', [
    userId,
    `{${grant.projectIds.join(',')}}`,
  ]);
  const reached = shared.filter((s) => limit.has(s.projectId));
  return {
    userId,
    allOwn: false,
    projectIds: [...own.map((r) => r.id), ...reached.map((s) => s.projectId)],
    shared: [...own.map((r) => ({ projectId: r.id, ownerId: userId })), ...reached],
  };
}
