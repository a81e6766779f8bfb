import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { enqueueIndex, enqueueIndexAll } from '../../../services/search/indexing.js';
import { retagProject, setStructureTags, tagCounts } from '../../../services/tags/tags.js';
import { access, visibleTo } from '../../access.js';
import { ApiError } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams, tagsSchema } from '../../schemas/common.js';
import { text } from '../../text.js';

const tagText = text().trim().min(1).max(100);
const tagParams = idParams.extend({ tag: tagText });
const tagsResponse = { 200: { description: "The structure's tags", schema: z.object({ tags: z.array(z.string()) }) } };
const MAX_TAGS = 100;

/** Tags on one structure, tags across a project (rename, delete), and tag counts. */
export function tagRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Tags';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/tags',
      access: { on: 'structure', need: 'write' },
      summary: 'Add tags to a structure (tags it already has are kept once)',
      tag,
      params: idParams,
      body: z.object({ tags: tagsSchema.min(1) }),
      responses: { ...tagsResponse, 422: { description: 'Too many tags', schema: errorSchema } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write');
      const tags = [...new Set([...structure.tags, ...body.tags])];
      if (tags.length > MAX_TAGS) throw new ApiError(422, 'too_many_tags', `A structure may have at most ${MAX_TAGS} tags; this would make ${tags.length}.`);
      if (tags.length !== structure.tags.length) {
        await setStructureTags(em, structure, tags);
        await enqueueIndex(app.queues, structure.id);
      }
      return { tags: structure.tags };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/structures/:id/tags/:tag',
      access: { on: 'structure', need: 'write' },
      summary: 'Remove a tag from a structure (no change if it does not have it)',
      tag,
      params: tagParams,
      responses: tagsResponse,
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write');
      if (structure.tags.includes(params.tag)) {
        await setStructureTags(
          em,
          structure,
          structure.tags.filter((t) => t !== params.tag),
        );
        await enqueueIndex(app.queues, structure.id);
      }
      return { tags: structure.tags };
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/tags/rename',
      access: { on: 'project', need: 'write' },
      summary: 'Rename a tag on every structure of a project, trash included (merges into the new tag where both exist)',
      tag,
      params: idParams,
      body: z.object({ from: tagText, to: tagText }),
      responses: { 200: { description: 'How many structures changed', schema: z.object({ structures: z.number() }) } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'write');
      if (body.from === body.to) return { structures: 0 };
      const changed = await retagProject(em, project.id, body.from, (tags) => [...new Set(tags.map((t) => (t === body.from ? body.to : t)))]);
      await enqueueIndexAll(
        app.queues,
        changed.map((s) => s.id),
      );
      return { structures: changed.length };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/projects/:id/tags/:tag',
      access: { on: 'project', need: 'write' },
      summary: 'Remove a tag from every structure of a project, trash included',
      tag,
      params: tagParams,
      responses: { 200: { description: 'How many structures changed', schema: z.object({ structures: z.number() }) } },
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'write');
      const changed = await retagProject(em, project.id, params.tag, (tags) => tags.filter((t) => t !== params.tag));
      await enqueueIndexAll(
        app.queues,
        changed.map((s) => s.id),
      );
      return { structures: changed.length };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/tags',
      access: { user: 'read' },
      summary: 'Your tags with how many structures carry each (trash excluded), most used first',
      tag,
      query: z.object({ project: z.uuid().optional() }),
      responses: { 200: { description: 'Tags and counts', schema: z.object({ items: z.array(z.object({ tag: z.string(), count: z.number() })) }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      if (query.project) await access(em, user).project(query.project, 'read');
      return { items: await tagCounts(em, await visibleTo(em, user), query.project) };
    },
  );

  return router;
}
