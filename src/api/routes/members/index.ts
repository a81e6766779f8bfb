import Router from '@koa/router';
import { z } from 'zod';
import { PROJECT_ROLES } from '../../../entities/ProjectMember.js';
import type { AppContext } from '../../../runtime/context.js';
import { addMember, changeMemberRole, findMember, listMembers, type MemberView, removeMember } from '../../../services/sharing/members.js';
import { findTeam } from '../../../services/sharing/teams.js';
import { access, requireWriteScope } from '../../access.js';
import { conflict, notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { membershipChange, userByEmail } from '../../sharing.js';

const memberSchema = z.object({
  id: z.uuid(),
  role: z.enum(PROJECT_ROLES),
  user: z.object({ id: z.uuid(), email: z.string(), name: z.string().nullable() }).nullable(),
  team: z.object({ id: z.uuid(), name: z.string() }).nullable(),
  ownerOfRecord: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const addMemberBody = z
  .object({ email: z.string().trim().min(3).max(320).optional(), teamId: z.uuid().optional(), role: z.enum(PROJECT_ROLES) })
  .strict()
  .refine((b) => (b.email === undefined) !== (b.teamId === undefined), { message: 'give either "email" (a user) or "teamId" (a team), not both' });
const changeMemberBody = z.object({ role: z.enum(PROJECT_ROLES) }).strict();
const memberParams = z.object({ id: z.uuid({ error: 'must be a UUID' }), memberId: z.uuid({ error: 'must be a UUID' }) });

const present = (m: MemberView) => ({ ...m, createdAt: m.createdAt.toISOString(), updatedAt: m.updatedAt.toISOString() });
const who = (m: MemberView) => (m.user ? { userId: m.user.id, email: m.user.email } : { teamId: m.team?.id, team: m.team?.name });

/** A project's members and their roles (users and teams); owners manage them. */
export function memberRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Members';

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects/:id/members',
      access: { on: 'project', need: 'read' },
      summary: "A project's members (users and teams) with their roles",
      tag,
      params: idParams,
      responses: { 200: { description: 'The members', schema: z.object({ items: z.array(memberSchema) }) } },
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'read');
      return { items: (await listMembers(em, project.id)).map(present) };
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/members',
      access: { on: 'project', need: 'own' },
      summary: 'Share the project: give a user (by email) or a team a role (viewer, editor or owner)',
      tag,
      params: idParams,
      body: addMemberBody,
      responses: {
        201: { description: 'The new member', schema: memberSchema },
        404: { description: 'No such project, user or team', schema: errorSchema },
        409: { description: 'Already a member (change the role with PATCH)', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'own');
      let subject: { userId: string } | { teamId: string };
      if (body.email) subject = { userId: (await userByEmail(em, body.email)).id };
      else {
        // Only a team the caller is in (any, for an administrator) can be given a role.
        const team = await findTeam(em, body.teamId as string, user.id, user.role === 'admin');
        if (!team) throw notFound('team');
        subject = { teamId: team.id };
      }
      const created = await em.transactional(async (tx) => {
        const member = await addMember(tx, project.id, subject, body.role);
        if (member) {
          await auditRequest(tx, koa, {
            action: 'project.member.add',
            targetType: 'project_member',
            targetId: member.id,
            projectId: project.id,
            details: { ...subject, ...(body.email ? { email: body.email } : {}), role: body.role },
          });
        }
        return member;
      });
      if (!created) throw conflict('They are a member of this project already; change their role with PATCH /v1/projects/:id/members/:memberId.');
      koa.status = 201;
      return present((await findMember(em, project.id, created.id)) as MemberView);
    },
  );

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/projects/:id/members/:memberId',
      access: { on: 'project', need: 'own' },
      summary: "Change a member's role",
      tag,
      params: memberParams,
      body: changeMemberBody,
      responses: {
        200: { description: 'The member', schema: memberSchema },
        409: { description: 'The owner of record cannot stop being an owner', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'own');
      const member = await findMember(em, project.id, params.memberId);
      if (!member) throw notFound('member');
      if (member.role !== body.role) {
        await membershipChange(() =>
          em.transactional(async (tx) => {
            await changeMemberRole(tx, project.id, member, body.role);
            await auditRequest(tx, koa, {
              action: 'project.member.role',
              targetType: 'project_member',
              targetId: member.id,
              projectId: project.id,
              details: { ...who(member), from: member.role, to: body.role },
            });
          }),
        );
      }
      return present((await findMember(em, project.id, member.id)) as MemberView);
    },
  );

  const remove = async (koa: Parameters<typeof auditRequest>[1], projectId: string, member: MemberView) => {
    const em = app.orm.em.fork();
    await membershipChange(() =>
      em.transactional(async (tx) => {
        await removeMember(tx, projectId, member);
        await auditRequest(tx, koa, {
          action: 'project.member.remove',
          targetType: 'project_member',
          targetId: member.id,
          projectId,
          details: { ...who(member), role: member.role },
        });
      }),
    );
    koa.status = 204;
  };

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/projects/:id/members/:memberId',
      access: { on: 'project', need: 'own' },
      summary: 'Remove a member (a user or a team)',
      tag,
      params: memberParams,
      responses: {
        204: { description: 'Removed' },
        409: { description: 'The owner of record cannot be removed', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'own');
      const member = await findMember(em, project.id, params.memberId);
      if (!member) throw notFound('member');
      await remove(koa, project.id, member);
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/leave',
      access: { on: 'project', need: 'read' },
      summary: 'Leave a project: remove your own (direct) membership',
      tag,
      params: idParams,
      responses: {
        204: { description: 'Left' },
        404: { description: 'No such project, or no direct membership of yours (a team membership is left by leaving the team)', schema: errorSchema },
        409: { description: 'The owner of record cannot leave', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      requireWriteScope(user);
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'read');
      const member = (await listMembers(em, project.id)).find((m) => m.user?.id === user.id);
      if (!member) throw notFound('direct membership of yours in this project');
      await remove(koa, project.id, member);
      return undefined;
    },
  );

  return router;
}
