import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn, updatedAtColumn } from './common.js';
import { Project } from './Project.js';
import { Team } from './Team.js';
import { User } from './User.js';

/** Project roles, lowest first: each may do what the one before it may, and more. */
export const PROJECT_ROLES = ['viewer', 'editor', 'owner'] as const;
export type ProjectRole = (typeof PROJECT_ROLES)[number];

/** A role in a project, given to one user or to a whole team (exactly one of the two). */
export const ProjectMember = defineEntity({
  name: 'ProjectMember',
  tableName: 'project_members',
  uniques: [{ properties: ['project', 'user'] }, { properties: ['project', 'team'] }],
  properties: {
    id: idColumn(),
    project: () => p.manyToOne(Project).mapToPk().deleteRule('cascade'),
    user: () => p.manyToOne(User).mapToPk().nullable().deleteRule('cascade').index(),
    team: () => p.manyToOne(Team).mapToPk().nullable().deleteRule('cascade').index(),
    role: p.enum(PROJECT_ROLES),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type ProjectMember = InferEntity<typeof ProjectMember>;
