import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Team } from '../../entities/Team.js';
import { TeamMember, type TeamRole } from '../../entities/TeamMember.js';
import { MembershipRefusal } from './members.js';
import { forgetCachedShares } from './roles.js';

export interface TeamView {
  id: string;
  name: string;
  /** The caller's role in it (null: an administrator who is not a member). */
  role: TeamRole | null;
  memberCount: number;
  createdAt: Date;
}

export interface TeamMemberView {
  user: { id: string; email: string; name: string | null };
  role: TeamRole;
  createdAt: Date;
}

/** A new team with its creator as maintainer. */
export async function createTeam(em: EntityManager, creatorId: string, name: string): Promise<Team> {
  return em.transactional(async (tx) => {
    const team = tx.create(Team, { name, createdBy: creatorId });
    tx.create(TeamMember, { team: team.id, user: creatorId, role: 'maintainer' });
    await tx.flush();
    return team;
  });
}

/** Teams the user is in (every team for an administrator), by name. */
export async function listTeams(em: EntityManager, userId: string, all: boolean): Promise<TeamView[]> {
  const rows = await em.execute<{ id: string; name: string; role: TeamRole | null; members: string; created_at: Date }[]>(
    `select t.id, t.name, mine.role, (select count(*) from team_members c where c.team_id = t.id) as members, t.created_at
     from teams t left join team_members mine on mine.team_id = t.id and mine.user_id = ?
     where ${all ? 'true' : 'mine.user_id is not null'} order by lower(t.name), t.id`,
    [userId],
  );
  return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, memberCount: Number(r.members), createdAt: new Date(r.created_at) }));
}

/** The team as the user sees it: undefined when it does not exist or they are not in it (and no administrator). */
export async function findTeam(em: EntityManager, teamId: string, userId: string, all: boolean): Promise<TeamView | undefined> {
  return (await listTeams(em, userId, all)).find((t) => t.id === teamId);
}

export async function teamMembers(em: EntityManager, teamId: string): Promise<TeamMemberView[]> {
  const rows = await em.execute<{ user_id: string; email: string; name: string | null; role: TeamRole; created_at: Date }[]>(
    `select m.user_id, u.email, u.name, m.role, m.created_at from team_members m join users u on u.id = m.user_id
     where m.team_id = ? order by u.email`,
    [teamId],
  );
  return rows.map((r) => ({ user: { id: r.user_id, email: r.email, name: r.name }, role: r.role, createdAt: new Date(r.created_at) }));
}

/** Adds a user, or changes the role of one already in the team; says which. */
export async function putTeamMember(em: EntityManager, teamId: string, userId: string, role: TeamRole): Promise<'added' | 'changed' | 'unchanged'> {
  const existing = await em.findOne(TeamMember, { team: teamId, user: userId });
  if (existing) {
    if (existing.role === role) return 'unchanged';
    if (role !== 'maintainer') await guardLastMaintainer(em, teamId, userId);
    existing.role = role;
    await em.flush();
    forgetCachedShares();
    return 'changed';
  }
  try {
    em.create(TeamMember, { team: teamId, user: userId, role });
    await em.flush();
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) return 'unchanged';
    throw error;
  }
  forgetCachedShares();
  return 'added';
}

async function guardLastMaintainer(em: EntityManager, teamId: string, userId: string): Promise<void> {
  const others = await em.count(TeamMember, { team: teamId, role: 'maintainer', user: { $ne: userId } });
  if (others === 0) {
    throw new MembershipRefusal('last_maintainer', 'A team keeps at least one maintainer: make someone else a maintainer first, or delete the team.');
  }
}

/** Removes a user from the team; false when they were not in it. */
export async function removeTeamMember(em: EntityManager, teamId: string, userId: string): Promise<boolean> {
  const existing = await em.findOne(TeamMember, { team: teamId, user: userId });
  if (!existing) return false;
  if (existing.role === 'maintainer') await guardLastMaintainer(em, teamId, userId);
  await em.nativeDelete(TeamMember, { id: existing.id });
  forgetCachedShares();
  return true;
}

/** Deletes a team; its project memberships go with it. */
export async function deleteTeam(em: EntityManager, teamId: string): Promise<void> {
  await em.nativeDelete(Team, { id: teamId });
  forgetCachedShares();
}
