import Router from '@koa/router';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { sqlArray } from '../../../db/arrays.js';
import { Project } from '../../../entities/Project.js';
import { serializeProject } from '../../../entities/serialize.js';
import type { AppContext } from '../../../runtime/context.js';
import { mergePatch } from '../../../services/metadata/metadata.js';
import { pruneProject } from '../../../services/versions/pruning.js';
import { decodeCursor, encodeCursor, idParams, listQuery } from '../../common.js';
import { ApiError, conflict, notFound } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { createProjectBody, projectSchema, updateProjectBody } from './schema.js';

export async function findOwnProject(em: EntityManager, userId: string, projectId: string): Promise<Project> {
  const project = await em.findOne(Project, { id: projectId, owner: userId });
  if (!project) throw notFound('project');
  return project;
}

/** Structure counts and bytes per project: distinct blobs of all versions of its live structures. */
async function projectStats(em: EntityManager, ids: string[]) {
  if (ids.length === 0) return new Map<string, { structureCount: number; usedBytes: number }>();
  const rows = await em.execute<{ project_id: string; structures: string; bytes: string | null }[]>(
    `select p.id as project_id,
            (select count(*) from structures s where s.project_id = p.id and s.deleted_at is null) as structures,
            (select sum(b.size) from blobs b where b.sha256 in (
               select v.blob_sha256 from structure_versions v join structures s on s.id = v.structure_id where s.project_id = p.id)) as bytes
     from projects p where p.id = any(?::uuid[])`,
    [sqlArray(ids)],
  );
  return new Map(rows.map((r) => [r.project_id, { structureCount: Number(r.structures), usedBytes: Number(r.bytes ?? 0) }]));
}

async function present(em: EntityManager, project: Project) {
  const stats = await projectStats(em, [project.id]);
  return serializeProject(project, stats.get(project.id) ?? { structureCount: 0, usedBytes: 0 });
}

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
      const project = em.create(Project, {
        owner: user.id,
        name: body.name,
        description: body.description ?? '',
        tags: body.tags ?? [],
        metadata: body.metadata ?? {},
        pruneKeepLast: body.pruning?.keepLast ?? null,
        pruneKeepDays: body.pruning?.keepDays ?? null,
      });
      try {
        await em.flush();
      } catch (error) {
        if (error instanceof UniqueConstraintViolationException) throw conflict(`You already have a project named "${body.name}".`);
        throw error;
      }
      koa.status = 201;
      koa.set('Location', `/v1/projects/${project.id}`);
      return present(em, project);
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
      const where = after
        ? {
            owner: user.id,
            $or: [{ createdAt: { $lt: new Date(after.createdAt) } }, { createdAt: new Date(after.createdAt), id: { $lt: after.id } }],
          }
        : { owner: user.id };
      const projects = await em.find(Project, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: query.limit + 1 });
      const page = projects.slice(0, query.limit);
      const stats = await projectStats(
        em,
        page.map((p) => p.id),
      );
      const last = page[page.length - 1];
      return {
        items: page.map((p) => serializeProject(p, stats.get(p.id) ?? { structureCount: 0, usedBytes: 0 })),
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
      return present(em, await findOwnProject(em, user.id, params.id));
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
      const project = await findOwnProject(em, user.id, params.id);
      if (body.name !== undefined) project.name = body.name;
      if (body.description !== undefined) project.description = body.description;
      if (body.tags !== undefined) project.tags = body.tags;
      if (body.metadata !== undefined) project.metadata = mergePatch(project.metadata, body.metadata); // merge; PUT own-metadata replaces
      if (body.pruning?.keepLast !== undefined) project.pruneKeepLast = body.pruning.keepLast;
      if (body.pruning?.keepDays !== undefined) project.pruneKeepDays = body.pruning.keepDays;
      try {
        await em.flush();
      } catch (error) {
        if (error instanceof UniqueConstraintViolationException) throw conflict(`You already have a project named "${body.name}".`);
        throw error;
      }
      // A new policy applies at once (no CPU work: rows and blob files), not only at the next upload.
      if (body.pruning) await pruneProject(em, app.blobs, project.id);
      return present(em, project);
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
      const project = await findOwnProject(em, user.id, params.id);
      const [row] = await em.execute<{ n: string }[]>('select count(*) as n from structures where project_id = ?', [project.id]);
      if (Number(row?.n ?? 0) > 0) {
        throw new ApiError(409, 'project_not_empty', 'The project still holds structures (some may be in the trash); delete or purge them first.', {
          structures: Number(row?.n),
        });
      }
      await em.nativeDelete(Project, { id: project.id });
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
