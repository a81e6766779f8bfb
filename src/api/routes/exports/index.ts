import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { releaseExport } from '../../../services/exports/exports.js';
import { dropPendingExportJob, exportProgress, listExports } from '../../../services/exports/requests.js';
import { access, visibleTo } from '../../access.js';
import { notFound } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { errorSchema } from '../../openapi.js';
import { presentExport } from '../../presenters/exports.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { createExportRoute } from './create.js';
import { downloadExportRoute } from './download.js';
import { exportSchema, listExportsQuery } from './schema.js';

const listCursor = z.object({ before: z.string(), id: z.uuid() });

export function exportRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Exports';
  createExportRoute(router, app);
  downloadExportRoute(router, app);

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/exports',
      access: { user: 'read' },
      summary: 'Your exports, newest first',
      tag,
      query: listExportsQuery,
      responses: { 200: { description: 'A page of exports', schema: z.object({ items: z.array(exportSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const before = decodeCursor(query.cursor, listCursor);
      const rows = await listExports(em, await visibleTo(em, user), {
        limit: query.limit,
        state: query.state,
        before: before && { createdAt: new Date(before.before), id: before.id },
      });
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        items: await Promise.all(page.map(async (row) => presentExport(row, await exportProgress(app.queues, row)))),
        nextCursor: rows.length > query.limit && last ? encodeCursor({ before: last.createdAt.toISOString(), id: last.id }) : null,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/exports/:id',
      access: { on: 'export', need: 'read' },
      summary: 'An export: state, progress, size, problems, expiry and where to download it (read from Postgres)',
      tag,
      params: idParams,
      responses: { 200: { description: 'The export', schema: exportSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user }) => {
      const row = await access(app.orm.em.fork(), user).exportArchive(params.id);
      return presentExport(row, await exportProgress(app.queues, row));
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/exports/:id',
      access: { on: 'export', need: 'write' },
      summary: 'Delete an export and its archive (your usage drops at once); an export still being written is abandoned',
      tag,
      params: idParams,
      responses: { 204: { description: 'Deleted' }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const row = await access(em, user).exportArchive(params.id);
      await dropPendingExportJob(app.queues, row.id);
      const released = await releaseExport(em, app.blobs, row.id, { remove: true });
      if (!released) throw notFound('export');
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
