import Router from '@koa/router';
import { z } from 'zod';
import { STRUCTURE_KINDS } from '../../../entities/Structure.js';
import { utf8Bytes } from '../../../lib/bytes.js';
import type { AppContext } from '../../../runtime/context.js';
import { InvalidCursorError, type PresentedSearchPage, SEARCH_FACETS, SEARCH_SORTS, type SearchFacet, type SearchQuery } from '../../../search/types.js';
import type { Visibility } from '../../../services/auth/visibility.js';
import { visibleTo } from '../../access.js';
import { ApiError } from '../../errors.js';
import { presentSearchItems } from '../../presenters/search.js';
import { route } from '../../route.js';
import { structureSchema } from '../../schemas/structures.js';

const listOf = (text: string | string[] | undefined) =>
  text === undefined
    ? []
    : (Array.isArray(text) ? text : [text])
        .flatMap((t) => t.split(','))
        .map((t) => t.trim())
        .filter(Boolean);

const boolean = z.enum(['true', 'false']).transform((v) => v === 'true');
const instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time such as 2026-01-31T00:00:00Z' }).transform((v) => new Date(v));

export const searchQuerySchema = z
  .object({
    q: z.string().max(500).optional(),
    tag: z.union([z.string(), z.array(z.string())]).optional(),
    tagMode: z.enum(['all', 'any']).default('all'),
    kind: z.enum(STRUCTURE_KINDS).optional(),
    format: z.string().max(20).optional(),
    project: z.uuid({ error: 'must be a project id (UUID)' }).optional(),
    atomsMin: z.coerce.number().int().min(0).optional(),
    atomsMax: z.coerce.number().int().min(0).optional(),
    resolutionMin: z.coerce.number().min(0).optional(),
    resolutionMax: z.coerce.number().positive().optional(),
    method: z.string().max(100).optional(),
    createdAfter: instant.optional(),
    createdBefore: instant.optional(),
    hasLigand: boolean.optional(),
    trash: z.enum(['exclude', 'include', 'only']).default('exclude'),
    sort: z.enum(SEARCH_SORTS).optional(),
    facets: z.union([z.string(), z.array(z.string())]).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(2000).optional(),
    scope: z.enum(['mine', 'shared', 'all']).default('all'),
  })
  .refine((q) => q.atomsMin === undefined || q.atomsMax === undefined || q.atomsMin <= q.atomsMax, {
    message: 'atomsMin is larger than atomsMax, so nothing could match',
    path: ['atomsMin'],
  })
  .refine((q) => q.resolutionMin === undefined || q.resolutionMax === undefined || q.resolutionMin <= q.resolutionMax, {
    message: 'resolutionMin is larger than resolutionMax, so nothing could match',
    path: ['resolutionMin'],
  });

/** The backend's own presented search when it has one (Postgres), else its hits presented from Postgres. */
async function presentedSearch(app: AppContext, query: SearchQuery, visible: Visibility): Promise<PresentedSearchPage> {
  if (app.search.searchPresented) return app.search.searchPresented(query);
  const result = await app.search.search(query);
  return { ...result, itemsJson: [await presentSearchItems(app.orm.em.fork(), visible, result.hits)] };
}

/**
 * Whose documents a search reads: `mine`, the projects the caller owns of record; `shared`, those
 * shared with them; `all`, both. Shared projects are grouped by their owner of record, whose index
 * entries the backends read.
 */
export function searchScope(visible: Visibility, scope: 'mine' | 'shared' | 'all'): Pick<SearchQuery, 'ownerId' | 'ownAll' | 'shared'> {
  const groups = new Map<string, string[]>();
  for (const { projectId, ownerId } of visible.shared) {
    const mine = ownerId === visible.userId;
    if ((scope === 'mine' && !mine) || (scope === 'shared' && mine)) continue;
    groups.set(ownerId, [...(groups.get(ownerId) ?? []), projectId]);
  }
  return {
    ownerId: visible.userId,
    ownAll: visible.allOwn && scope !== 'shared',
    shared: [...groups].map(([ownerId, projectIds]) => ({ ownerId, projectIds })),
  };
}

/** The search a validated query string asks for, within what the caller may see. */
export function searchQueryOf(query: z.infer<typeof searchQuerySchema>, scope: Pick<SearchQuery, 'ownerId' | 'ownAll' | 'shared'>): SearchQuery {
  return {
    ...scope,
    q: query.q?.trim() || undefined,
    tags: listOf(query.tag),
    tagMode: query.tagMode,
    kind: query.kind,
    format: query.format?.toLowerCase(),
    projectId: query.project,
    atomsMin: query.atomsMin,
    atomsMax: query.atomsMax,
    resolutionMin: query.resolutionMin,
    resolutionMax: query.resolutionMax,
    method: query.method,
    createdFrom: query.createdAfter,
    createdTo: query.createdBefore,
    hasLigand: query.hasLigand,
    trash: query.trash,
    sort: query.sort,
    facets: listOf(query.facets) as SearchFacet[],
    limit: query.limit,
    cursor: query.cursor,
  };
}

export function searchRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/search',
      access: { user: 'read' },
      summary:
        'Search the structures you may see (scope: mine, shared or all): words (prefixes and small typos match), tags (all or any), kind, format, project, atom and resolution ranges, method, creation time, ligands, trash; sorted, faceted, paged by cursor',
      tag: 'Search',
      query: searchQuerySchema,
      responses: {
        200: {
          description: 'Hits in the asked order; `facets` counts every match, not only this page',
          schema: z.object({
            items: z.array(z.object({ structure: structureSchema, score: z.number(), highlights: z.array(z.string()) })),
            facets: z.record(z.string(), z.record(z.string(), z.number())),
            total: z.number(),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async ({ query, user, koa }) => {
      const facets = listOf(query.facets);
      const unknownFacet = facets.find((f) => !(SEARCH_FACETS as readonly string[]).includes(f));
      if (unknownFacet) {
        throw new ApiError(400, 'invalid_request', `"${unknownFacet}" is not a facet; the facets are ${SEARCH_FACETS.join(', ')}.`, {
          facets: SEARCH_FACETS,
        });
      }
      const visible = await visibleTo(app.orm.em.fork(), user);
      const search = searchQueryOf(query, searchScope(visible, query.scope));
      const page = await presentedSearch(app, search, visible).catch((error: unknown): never => {
        if (error instanceof InvalidCursorError) throw new ApiError(400, 'invalid_cursor', error.message);
        throw error;
      });
      // The items arrive as JSON text (built by Postgres): the body is assembled around them, not parsed and
      // serialised again, and encoded once, piece by piece (a string body would be measured, then encoded, by Koa).
      koa.type = 'application/json';
      koa.body = utf8Bytes([
        '{"items":',
        ...page.itemsJson,
        `,"facets":${JSON.stringify(page.facets)},"total":${page.total},"nextCursor":${JSON.stringify(page.nextCursor)}}`,
      ]);
      return undefined;
    },
  );
  return router;
}
