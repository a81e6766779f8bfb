import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, idColumn } from './common.js';
import { Team } from './Team.js';
import { User } from './User.js';

export const TEAM_ROLES = ['member', 'maintainer'] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

/** A user in a team; maintainers manage the team's membership. */
export const TeamMember = defineEntity({
  name: 'TeamMember',
  tableName: 'team_members',
  uniques: [{ properties: ['team', 'user'] }],
  properties: {
    id: idColumn(),
    team: () => p.manyToOne(Team).mapToPk().deleteRule('cascade'),
    user: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    role: p.enum(TEAM_ROLES),
    createdAt: createdAtColumn(),
  },
});
export type TeamMember = InferEntity<typeof TeamMember>;
