import Router from '@koa/router';
import { z } from 'zod';
import { TEAM_ROLES } from '../../../entities/TeamMember.js';
import type { User } from '../../../entities/User.js';
import type { AppContext } from '../../../runtime/context.js';
import { createTeam, deleteTeam, findTeam, listTeams, putTeamMember, removeTeamMember, type TeamView, teamMembers } from '../../../services/sharing/teams.js';
import { requireWriteScope } from '../../access.js';
import { ApiError, notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { membershipChange, userByEmail } from '../../sharing.js';

const teamSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  role: z.enum(TEAM_ROLES).nullable(),
  memberCount: z.number(),
  createdAt: z.string(),
});
const teamMemberSchema = z.object({
  user: z.object({ id: z.uuid(), email: z.string(), name: z.string().nullable() }),
  role: z.enum(TEAM_ROLES),
  createdAt: z.string(),
});
const createTeamBody = z.object({ name: z.string().trim().min(1).max(200) }).strict();
const addTeamMemberBody = z.object({ email: z.string().trim().min(3).max(320), role: z.enum(TEAM_ROLES).default('member') }).strict();
const teamMemberParams = z.object({ id: z.uuid({ error: 'must be a UUID' }), userId: z.uuid({ error: 'must be a UUID' }) });

const present = (t: TeamView) => ({ ...t, createdAt: t.createdAt.toISOString() });
const isAdmin = (user: User) => user.role === 'admin';

/**
 * The team the caller may see (404 otherwise), and, for `manage`, may manage: its maintainers and
 * administrators (403 to a plain member).
 */
async function teamFor(app: AppContext, user: User, id: string, manage: boolean): Promise<TeamView> {
  const team = await findTeam(app.orm.em.fork(), id, user.id, isAdmin(user));
  if (!team) throw notFound('team');
  if (manage && team.role !== 'maintainer' && !isAdmin(user)) {
    throw new ApiError(403, 'forbidden', "Only the team's maintainers (and administrators) manage it; you are a member.", { needed: 'maintainer' });
  }
  return team;
}

/** Teams: groups of users that can be given a project role at once. */
export function teamRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Teams';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/teams',
      access: { user: 'write' },
      summary: 'Create a team (you become its maintainer)',
      tag,
      body: createTeamBody,
      responses: { 201: { description: 'The team', schema: teamSchema } },
    },
    async ({ body, user, koa }) => {
      const em = app.orm.em.fork();
      const team = await em.transactional(async (tx) => {
        const created = await createTeam(tx, user.id, body.name);
        await auditRequest(tx, koa, { action: 'team.create', targetType: 'team', targetId: created.id, details: { name: body.name } });
        return created;
      });
      koa.status = 201;
      koa.set('Location', `/v1/teams/${team.id}`);
      return present((await findTeam(em, team.id, user.id, true)) as TeamView);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/teams',
      access: { user: 'read' },
      summary: 'The teams you are in (every team, for an administrator)',
      tag,
      responses: { 200: { description: 'Teams', schema: z.object({ items: z.array(teamSchema) }) } },
    },
    async ({ user }) => {
      return { items: (await listTeams(app.orm.em.fork(), user.id, isAdmin(user))).map(present) };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/teams/:id',
      access: { on: 'team', need: 'read' },
      summary: 'A team and its members',
      tag,
      params: idParams,
      responses: {
        200: { description: 'The team', schema: teamSchema.extend({ members: z.array(teamMemberSchema) }) },
        404: { description: 'No such team of yours', schema: errorSchema },
      },
    },
    async ({ params, user }) => {
      const team = await teamFor(app, user, params.id, false);
      const members = await teamMembers(app.orm.em.fork(), team.id);
      return { ...present(team), members: members.map((m) => ({ ...m, createdAt: m.createdAt.toISOString() })) };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/teams/:id',
      access: { on: 'team', need: 'own' },
      summary: 'Delete a team (maintainers, administrators); the roles it had in projects go with it',
      tag,
      params: idParams,
      responses: { 204: { description: 'Deleted' } },
    },
    async ({ params, user, koa }) => {
      requireWriteScope(user);
      const team = await teamFor(app, user, params.id, true);
      await app.orm.em.fork().transactional(async (tx) => {
        await deleteTeam(tx, team.id);
        await auditRequest(tx, koa, { action: 'team.delete', targetType: 'team', targetId: team.id, details: { name: team.name } });
      });
      koa.status = 204;
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/teams/:id/members',
      access: { on: 'team', need: 'own' },
      summary: "Add a user to a team by email, or change a member's team role (maintainers, administrators)",
      tag,
      params: idParams,
      body: addTeamMemberBody,
      responses: {
        201: { description: 'Added', schema: teamMemberSchema },
        200: { description: 'Already a member: their role is now the one given', schema: teamMemberSchema },
        404: { description: 'No such team, or no account with that email', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      requireWriteScope(user);
      const team = await teamFor(app, user, params.id, true);
      const em = app.orm.em.fork();
      const member = await userByEmail(em, body.email);
      const outcome = await membershipChange(() =>
        em.transactional(async (tx) => {
          const done = await putTeamMember(tx, team.id, member.id, body.role);
          if (done !== 'unchanged') {
            await auditRequest(tx, koa, {
              action: done === 'added' ? 'team.member.add' : 'team.member.role',
              targetType: 'team',
              targetId: team.id,
              details: { userId: member.id, email: member.email, role: body.role },
            });
          }
          return done;
        }),
      );
      koa.status = outcome === 'added' ? 201 : 200;
      const shown = (await teamMembers(em, team.id)).find((m) => m.user.id === member.id);
      return shown && { ...shown, createdAt: shown.createdAt.toISOString() };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/teams/:id/members/:userId',
      // Removing someone else takes a maintainer; anyone in the team may remove themselves (leave).
      access: { on: 'team', need: 'own' },
      summary: 'Remove a user from a team (maintainers, administrators), or leave it (any member, themselves)',
      tag,
      params: teamMemberParams,
      responses: {
        204: { description: 'Removed' },
        403: { description: 'Removing someone else takes a maintainer', schema: errorSchema },
        409: { description: 'The last maintainer cannot leave', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      requireWriteScope(user);
      const team = await teamFor(app, user, params.id, params.userId !== user.id);
      const em = app.orm.em.fork();
      const removed = await membershipChange(() =>
        em.transactional(async (tx) => {
          const done = await removeTeamMember(tx, team.id, params.userId);
          if (done) {
            await auditRequest(tx, koa, { action: 'team.member.remove', targetType: 'team', targetId: team.id, details: { userId: params.userId } });
          }
          return done;
        }),
      );
      if (!removed) throw notFound('member of this team');
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
