import Router from '@koa/router';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { z } from 'zod';
import { RELATIONSHIP_TYPES, Relationship } from '../../../entities/Relationship.js';
import type { AppContext } from '../../../runtime/context.js';
import { idParams } from '../../common.js';
import { ApiError, conflict, notFound } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { findOwnStructure } from '../structures/index.js';

const relationshipSchema = z.object({
  id: z.uuid(),
  type: z.enum(RELATIONSHIP_TYPES),
  sourceId: z.uuid(),
  targetId: z.uuid(),
  /** Seen from the structure in the path: it is the source (outgoing) or the target (incoming). */
  direction: z.enum(['outgoing', 'incoming']),
  createdAt: z.string(),
});

function present(relationship: Relationship, from: string) {
  return {
    id: relationship.id,
    type: relationship.type,
    sourceId: relationship.source,
    targetId: relationship.target,
    direction: relationship.source === from ? ('outgoing' as const) : ('incoming' as const),
    createdAt: relationship.createdAt.toISOString(),
  };
}

/** Typed links between two structures of one owner: derived-from, ligand-of, related. */
export function relationshipRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Relationships';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/relationships',
      summary: 'Link this structure (source) to another of yours (target), e.g. this derived-from that',
      tag,
      params: idParams,
      body: z.object({ type: z.enum(RELATIONSHIP_TYPES), targetId: z.uuid() }),
      responses: {
        201: { description: 'Created', schema: relationshipSchema },
        404: { description: 'Either structure is missing, trashed or not yours', schema: errorSchema },
        409: { description: 'The same link exists', schema: errorSchema },
        422: { description: 'A structure linked to itself', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      const source = await findOwnStructure(em, user.id, params.id);
      if (body.targetId === source.id) throw new ApiError(422, 'self_relationship', 'A structure cannot be related to itself.');
      // Another owner's structure answers 404 like a missing one: no existence leak.
      const target = await findOwnStructure(em, user.id, body.targetId).catch(() => {
        throw notFound('target structure');
      });
      const relationship = em.create(Relationship, { owner: user.id, source: source.id, target: target.id, type: body.type });
      try {
        await em.flush();
      } catch (error) {
        if (error instanceof UniqueConstraintViolationException) throw conflict(`"${source.name}" is already ${body.type} "${target.name}".`);
        throw error;
      }
      koa.status = 201;
      return present(relationship, source.id);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/relationships',
      summary: "A structure's links, both directions",
      tag,
      params: idParams,
      query: z.object({ type: z.enum(RELATIONSHIP_TYPES).optional() }),
      responses: { 200: { description: 'Links', schema: z.object({ items: z.array(relationshipSchema), nextCursor: z.null() }) } },
    },
    async ({ params, query, user }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      const where = { $or: [{ source: structure.id }, { target: structure.id }], ...(query.type ? { type: query.type } : {}) };
      const links = await em.find(Relationship, where, { orderBy: { createdAt: 'asc', id: 'asc' } });
      return { items: links.map((l) => present(l, structure.id)), nextCursor: null };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/structures/:id/relationships/:relationshipId',
      summary: 'Remove a link of this structure (either direction)',
      tag,
      params: idParams.extend({ relationshipId: z.uuid() }),
      responses: { 204: { description: 'Removed' }, 404: { description: 'No such link', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      const removed = await em.nativeDelete(Relationship, {
        id: params.relationshipId,
        owner: user.id,
        $or: [{ source: structure.id }, { target: structure.id }],
      });
      if (removed === 0) throw notFound('relationship');
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
