import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Project } from '../../entities/Project.js';
import { ProjectMember, type ProjectRole } from '../../entities/ProjectMember.js';
import { Structure } from '../../entities/Structure.js';
import { forgetCachedShares } from './roles.js';

/** A member as the API shows it: a user or a team, and the role. */
export interface MemberView {
  id: string;
  role: ProjectRole;
  user: { id: string; email: string; name: string | null } | null;
  team: { id: string; name: string } | null;
  ownerOfRecord: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** Why a membership change is refused (the API answers 409 with the sentence). */
export class MembershipRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'MembershipRefusal';
  }
}

/** A project's members, users first (by email), then teams (by name). */
export async function listMembers(em: EntityManager, projectId: string): Promise<MemberView[]> {
  const rows = await em.execute<
    {
      id: string;
      role: ProjectRole;
      user_id: string | null;
      email: string | null;
      user_name: string | null;
      team_id: string | null;
      team_name: string | null;
      owner_id: string;
      created_at: Date;
      updated_at: Date;
    }[]
  >(
    `select m.id, m.role, m.user_id, u.email, u.name as user_name, m.team_id, t.name as team_name, p.owner_id, m.created_at, m.updated_at
     from project_members m join projects p on p.id = m.project_id
     left join users u on u.id = m.user_id left join teams t on t.id = m.team_id
     where m.project_id = ? order by (m.user_id is null), u.email, t.name, m.id`,
    [projectId],
  );
  return rows.map((r) => ({
    id: r.id,
    role: r.role,
    user: r.user_id ? { id: r.user_id, email: r.email as string, name: r.user_name } : null,
    team: r.team_id ? { id: r.team_id, name: r.team_name as string } : null,
    ownerOfRecord: r.user_id === r.owner_id,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  }));
}

export async function findMember(em: EntityManager, projectId: string, memberId: string): Promise<MemberView | undefined> {
  return (await listMembers(em, projectId)).find((m) => m.id === memberId);
}

/** Adds a user or a team with a role; undefined when they are a member already. */
export async function addMember(
  em: EntityManager,
  projectId: string,
  who: { userId: string } | { teamId: string },
  role: ProjectRole,
): Promise<ProjectMember | undefined> {
  // On conflict do nothing, not a caught unique violation: inside the caller's transaction that
  // violation would abort it, and its commit would then fail (a 500 instead of the 409).
  const [row] = await em.execute<{ id: string }[]>(
    `insert into project_members (id, project_id, user_id, team_id, role, created_at, updated_at)
     values (?, ?, ?, ?, ?, now(), now()) on conflict do nothing returning id`,
    [randomUUID(), projectId, 'userId' in who ? who.userId : null, 'teamId' in who ? who.teamId : null, role],
  );
  if (!row) return undefined;
  forgetCachedShares();
  return em.findOneOrFail(ProjectMember, { id: row.id });
}

/**
 * The owner of record must stay an owner (they are charged for the project): transfer ownership
 * first. And a project always keeps one owner: that follows, since its owner of record is one.
 */
function guardOwnerOfRecord(member: MemberView, change: string): void {
  if (member.ownerOfRecord) {
    throw new MembershipRefusal(
      'last_owner',
      `${member.user?.email} owns this project of record (its storage counts against their quota), so they cannot ${change}; transfer the project first (PATCH /v1/projects/:id {"ownerId"}).`,
    );
  }
}

export async function changeMemberRole(em: EntityManager, projectId: string, member: MemberView, role: ProjectRole): Promise<void> {
  if (role !== 'owner') guardOwnerOfRecord(member, 'stop being an owner');
  await em.nativeUpdate(ProjectMember, { id: member.id, project: projectId }, { role, updatedAt: new Date() });
  forgetCachedShares();
}

export async function removeMember(em: EntityManager, projectId: string, member: MemberView): Promise<void> {
  guardOwnerOfRecord(member, 'leave it');
  await em.nativeDelete(ProjectMember, { id: member.id, project: projectId });
  forgetCachedShares();
}

/**
 * Makes another owner member the project's owner of record: the project, its structures and its
 * drafts are charged to them from now on (uploads already under way finish on the former owner's
 * quota). False when they already have a project of that name.
 */
export async function transferProject(em: EntityManager, project: Project, newOwnerId: string): Promise<boolean> {
  try {
    await em.transactional(async (tx) => {
      await tx.nativeUpdate(Project, { id: project.id }, { owner: newOwnerId, updatedAt: new Date() });
      await tx.nativeUpdate(Structure, { project: project.id }, { owner: newOwnerId });
      await tx.execute('update drafts set owner_id = ? where structure_id in (select id from structures where project_id = ?)', [newOwnerId, project.id]);
    });
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) return false;
    throw error;
  }
  project.owner = newOwnerId;
  forgetCachedShares();
  return true;
}

/** Whether this user is a direct owner member of the project. */
export async function isOwnerMember(em: EntityManager, projectId: string, userId: string): Promise<boolean> {
  return (await em.count(ProjectMember, { project: projectId, user: userId, role: 'owner' })) > 0;
}

/** Ids of a project's structures (to reindex them under a new owner). */
export async function projectStructureIds(em: EntityManager, projectId: string): Promise<string[]> {
  const rows = await em.find(Structure, { project: projectId }, { fields: ['id'] });
  return rows.map((r) => r.id);
}
