import Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Project } from '../../../entities/Project.js';
import type { AppContext } from '../../../runtime/context.js';
import { mergePatch } from '../../../services/metadata/metadata.js';
import { changeProject, createProject, deleteProject, listProjects, structureCount } from '../../../services/projects/projects.js';
import { refreshUsage } from '../../../services/quota/usage.js';
import { enqueueIndex } from '../../../services/search/indexing.js';
import { isOwnerMember, projectStructureIds, transferProject } from '../../../services/sharing/members.js';
import { pruneProject } from '../../../services/versions/pruning.js';
import { access, visibleTo } from '../../access.js';
import { ApiError, conflict } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { errorSchema } from '../../openapi.js';
import { presentProject, presentProjects } from '../../presenters/projects.js';
import { route } from '../../route.js';
import { idParams, listQuery } from '../../schemas/common.js';
import { createProjectBody, projectSchema, updateProjectBody } from './schema.js';

const cursorSchema = z.object({ createdAt: z.string(), id: z.uuid() });

/** Hands the project to another owner member: their quota pays for it from now on; the index follows. */
async function transfer(app: AppContext, em: EntityManager, koa: Context, project: Project, newOwnerId: string): Promise<void> {
  if (!(await isOwnerMember(em, project.id, newOwnerId))) {
    throw new ApiError(
      422,
      'not_an_owner',
      'A project can only be transferred to one of its owners: give them the owner role first (POST /v1/projects/:id/members).',
    );
  }
  const formerOwnerId = project.owner;
  const moved = await em.transactional(async (tx) => {
    const done = await transferProject(tx, project, newOwnerId);
    if (done) {
      await auditRequest(tx, koa, {
        action: 'project.owner.transfer',
        targetType: 'project',
        targetId: project.id,
        projectId: project.id,
        details: { from: formerOwnerId, to: newOwnerId },
      });
    }
    return done;
  });
  if (!moved) throw conflict(`The new owner already has a project named "${project.name}"; rename one of them first.`);
  await refreshUsage(em, formerOwnerId);
  await refreshUsage(em, newOwnerId);
  for (const id of await projectStructureIds(em, project.id)) await enqueueIndex(app.queues, id);
}

export function projectRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Projects';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects',
      access: { user: 'write' },
      summary: 'Create a project',
      tag,
      body: createProjectBody,
      responses: { 201: { description: 'Created', schema: projectSchema }, 409: { description: 'Name taken', schema: errorSchema } },
    },
    async ({ body, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await createProject(em, user.id, body);
      if (!project) throw conflict(`You already have a project named "${body.name}".`);
      koa.status = 201;
      koa.set('Location', `/v1/projects/${project.id}`);
      return presentProject(em, project);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects',
      access: { user: 'read' },
      summary: 'List the projects you may see (yours and those shared with you), newest first',
      tag,
      query: listQuery,
      responses: { 200: { description: 'A page of projects', schema: z.object({ items: z.array(projectSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const after = decodeCursor(query.cursor, cursorSchema);
      const projects = await listProjects(em, await visibleTo(em, user), {
        limit: query.limit,
        after: after && { createdAt: new Date(after.createdAt), id: after.id },
      });
      const page = projects.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        items: await presentProjects(em, page),
        nextCursor: projects.length > query.limit && last ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id }) : null,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects/:id',
      access: { on: 'project', need: 'read' },
      summary: 'Get a project',
      tag,
      params: idParams,
      responses: { 200: { description: 'The project', schema: projectSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      return presentProject(em, await access(em, user).project(params.id, 'read'));
    },
  );

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/projects/:id',
      access: { on: 'project', need: 'write' },
      summary: 'Change a project',
      tag,
      params: idParams,
      body: updateProjectBody,
      responses: { 200: { description: 'The project', schema: projectSchema }, 409: { description: 'Name taken', schema: errorSchema } },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      // Pruning and ownership are the project's governance; names, descriptions, tags and metadata are its content.
      const project = await access(em, user).project(params.id, body.pruning || body.ownerId ? 'own' : 'write');
      if (body.ownerId && body.ownerId !== project.owner) await transfer(app, em, koa, project, body.ownerId);
      const changes = { ...body, metadata: body.metadata === undefined ? undefined : mergePatch(project.metadata, body.metadata) }; // merge; PUT own-metadata replaces
      if (!(await changeProject(em, project, changes))) throw conflict(`You already have a project named "${body.name}".`);
      // A new policy applies at once (no CPU work: rows and blob files), not only at the next upload.
      if (body.pruning) await pruneProject(em, app.blobs, project.id);
      return presentProject(em, project);
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/projects/:id',
      access: { on: 'project', need: 'own' },
      summary: 'Delete an empty project',
      tag,
      params: idParams,
      responses: { 204: { description: 'Deleted' }, 409: { description: 'Not empty', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'own');
      const structures = await structureCount(em, project.id);
      if (structures > 0) {
        throw new ApiError(409, 'project_not_empty', 'The project still holds structures (some may be in the trash); delete or purge them first.', {
          structures,
        });
      }
      await em.transactional(async (tx) => {
        await deleteProject(tx, project.id);
        await auditRequest(tx, koa, {
          action: 'project.delete',
          targetType: 'project',
          targetId: project.id,
          projectId: project.id,
          details: { name: project.name },
        });
      });
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
