import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { mergePatch } from '../../../services/metadata/metadata.js';
import { changeProject, createProject, deleteProject, listProjects, structureCount } from '../../../services/projects/projects.js';
import { pruneProject } from '../../../services/versions/pruning.js';
import { access, visibleTo } from '../../access.js';
import { ApiError, conflict } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { errorSchema } from '../../openapi.js';
import { presentProject, presentProjects } from '../../presenters/projects.js';
import { route } from '../../route.js';
import { idParams, listQuery } from '../../schemas/common.js';
import { createProjectBody, projectSchema, updateProjectBody } from './schema.js';

const cursorSchema = z.object({ createdAt: z.string(), id: z.uuid() });

export function projectRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Projects';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects',
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
      summary: 'List your projects, newest first',
      tag,
      query: listQuery,
      responses: { 200: { description: 'A page of projects', schema: z.object({ items: z.array(projectSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const after = decodeCursor(query.cursor, cursorSchema);
      const projects = await listProjects(em, visibleTo(user), {
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
      summary: 'Change a project',
      tag,
      params: idParams,
      body: updateProjectBody,
      responses: { 200: { description: 'The project', schema: projectSchema }, 409: { description: 'Name taken', schema: errorSchema } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      // Pruning is the project's governance; names, descriptions, tags and metadata are its content.
      const project = await access(em, user).project(params.id, body.pruning ? 'own' : 'write');
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
      await deleteProject(em, project.id);
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
