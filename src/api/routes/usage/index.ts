import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { USAGE_CATEGORIES } from '../../../services/quota/blobReferences.js';
import { reservedBytes } from '../../../services/quota/report.js';
import { projectUsage, refreshUsage } from '../../../services/quota/usage.js';
import { visibleTo } from '../../access.js';
import { route } from '../../route.js';

export const usageSchema = z.object({
  quotaBytes: z.number(),
  usedBytes: z.number(),
  /** Held by uploads still in progress (not yet in usedBytes). */
  reservedBytes: z.number(),
  breakdown: z.object(Object.fromEntries(USAGE_CATEGORIES.map((c) => [c, z.number()])) as Record<(typeof USAGE_CATEGORIES)[number], z.ZodNumber>),
  projects: z.array(z.object({ id: z.uuid(), name: z.string(), usedBytes: z.number() })),
  computedAt: z.string(),
});

export function usageRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/usage',
      access: { user: 'read' },
      summary: 'Your quota and the bytes you use: each distinct file once, by category and by project',
      tag: 'Usage',
      responses: { 200: { description: 'Quota and usage', schema: usageSchema } },
    },
    async ({ user }) => {
      const em = app.orm.em.fork();
      // Read fresh (and stored, which also corrects any drift): this is the figure users act on.
      const figure = await refreshUsage(em, user.id);
      return {
        quotaBytes: user.quotaBytes,
        usedBytes: figure.usedBytes,
        reservedBytes: await reservedBytes(em, user.id),
        breakdown: figure.breakdown,
        // Per project: the projects charged to the caller that this token may see.
        projects: await projectUsage(em, await visibleTo(em, user)),
        computedAt: new Date().toISOString(),
      };
    },
  );
  return router;
}
