import Router from '@koa/router';
import { z } from 'zod';
import { STRUCTURE_KINDS, Structure } from '../../../entities/Structure.js';
import type { AppContext } from '../../../services/context.js';
import { decodeCursor, encodeCursor } from '../../common.js';
import { route } from '../../route.js';
import { presentStructures } from '../structures/present.js';
import { structureSchema } from '../structures/schema.js';

const FACETS = ['tag', 'kind', 'format', 'method'] as const;

export const searchQuerySchema = z.object({
  q: z.string().max(500).optional(),
  tag: z.union([z.string(), z.array(z.string())]).optional(),
  kind: z.enum(STRUCTURE_KINDS).optional(),
  format: z.string().optional(),
  project: z.uuid().optional(),
  atomsMin: z.coerce.number().int().min(0).optional(),
  atomsMax: z.coerce.number().int().min(0).optional(),
  resolutionMax: z.coerce.number().positive().optional(),
  method: z.string().optional(),
  sort: z.enum(['relevance', 'created', '-created', 'name', 'atoms']).optional(),
  facets: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
});

export function searchRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/search',
      summary: 'Search your structures by text, tags, kind, format, project, size and resolution',
      tag: 'Search',
      query: searchQuerySchema,
      responses: {
        200: {
          description: 'Hits, best first',
          schema: z.object({
            items: z.array(z.object({ structure: structureSchema, score: z.number(), highlights: z.array(z.string()) })),
            facets: z.record(z.string(), z.record(z.string(), z.number())),
            total: z.number(),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async ({ query, user }) => {
      const offset = decodeCursor(query.cursor, z.object({ offset: z.number().int().min(0) }))?.offset ?? 0;
      const tags = query.tag === undefined ? undefined : (Array.isArray(query.tag) ? query.tag : query.tag.split(',')).map((t) => t.trim()).filter(Boolean);
      const facets = (query.facets ?? '')
        .split(',')
        .map((f) => f.trim())
        .filter((f): f is (typeof FACETS)[number] => (FACETS as readonly string[]).includes(f));
      const result = await app.search.search({
        ownerId: user.id,
        q: query.q?.trim() || undefined,
        tags,
        kind: query.kind,
        format: query.format,
        projectId: query.project,
        atomsMin: query.atomsMin,
        atomsMax: query.atomsMax,
        resolutionMax: query.resolutionMax,
        method: query.method,
        sort: query.sort,
        facets,
        limit: query.limit,
        offset,
      });
      const em = app.orm.em.fork();
      const ids = result.hits.map((h) => h.structureId);
      const structures = ids.length ? await em.find(Structure, { id: { $in: ids }, owner: user.id }) : [];
      const presented = new Map((await presentStructures(em, structures)).map((s) => [s.id, s]));
      return {
        items: result.hits
          .filter((h) => presented.has(h.structureId))
          .map((h) => ({ structure: presented.get(h.structureId), score: h.score, highlights: h.highlights })),
        facets: result.facets,
        total: result.total,
        nextCursor: offset + query.limit < result.total ? encodeCursor({ offset: offset + query.limit }) : null,
      };
    },
  );
  return router;
}
