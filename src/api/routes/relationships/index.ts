import Router from '@koa/router';
import { z } from 'zod';
import { RELATIONSHIP_TYPES } from '../../../entities/Relationship.js';
import type { AppContext } from '../../../runtime/context.js';
import { linkStructures, relationshipsOf, unlink } from '../../../services/structures/relationships.js';
import { visibleSelection } from '../../../services/structures/selection.js';
import { access } from '../../access.js';
import { ApiError, conflict, notFound } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { presentRelationship } from '../../presenters/relationships.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';

const relationshipSchema = z.object({
  id: z.uuid(),
  type: z.enum(RELATIONSHIP_TYPES),
  sourceId: z.uuid(),
  targetId: z.uuid(),
  /** Seen from the structure in the path: it is the source (outgoing) or the target (incoming). */
  direction: z.enum(['outgoing', 'incoming']),
  createdAt: z.string(),
});

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
      access: { on: 'structure', need: 'write' },
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
      const source = await access(em, user).structure(params.id, 'write');
      if (body.targetId === source.id) throw new ApiError(422, 'self_relationship', 'A structure cannot be related to itself.');
      // Another owner's structure answers 404 like a missing one: no existence leak.
      const target = await access(em, user)
        .structure(body.targetId, 'read')
        .catch(() => {
          throw notFound('target structure');
        });
      const relationship = await linkStructures(em, { owner: source.owner, source: source.id, target: target.id, type: body.type });
      if (!relationship) throw conflict(`"${source.name}" is already ${body.type} "${target.name}".`);
      koa.status = 201;
      return presentRelationship(relationship, source.id);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/relationships',
      access: { on: 'structure', need: 'read' },
      summary: "A structure's links, both directions",
      tag,
      params: idParams,
      query: z.object({ type: z.enum(RELATIONSHIP_TYPES).optional() }),
      responses: { 200: { description: 'Links', schema: z.object({ items: z.array(relationshipSchema), nextCursor: z.null() }) } },
    },
    async ({ params, query, user }) => {
      const em = app.orm.em.fork();
      const caller = access(em, user);
      const structure = await caller.structure(params.id, 'read', { trashed: true });
      const links = await relationshipsOf(em, structure.id, query.type);
      // Only links whose other end the caller may see too (it can lie in a project not shared with them).
      const others = [...new Set(links.map((l) => (l.source === structure.id ? l.target : l.source)))];
      const seen = new Set((await visibleSelection(em, await caller.visible(), others)).map((s) => s.id));
      const shown = links.filter((l) => seen.has(l.source === structure.id ? l.target : l.source));
      return { items: shown.map((l) => presentRelationship(l, structure.id)), nextCursor: null };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/structures/:id/relationships/:relationshipId',
      access: { on: 'structure', need: 'write' },
      summary: 'Remove a link of this structure (either direction)',
      tag,
      params: idParams.extend({ relationshipId: z.uuid() }),
      responses: { 204: { description: 'Removed' }, 404: { description: 'No such link', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structureAccess = access(em, user);
      const structure = await structureAccess.structure(params.id, 'write', { trashed: true });
      if (!(await unlink(em, structure.id, params.relationshipId))) throw notFound('relationship');
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
