import Router from '@koa/router';
import { z } from 'zod';
import { LIVE_IMPORT_BATCH_STATES } from '../../../entities/ImportBatch.js';
import type { ImportItem } from '../../../entities/ImportItem.js';
import type { AppContext } from '../../../runtime/context.js';
import { countsOf } from '../../../services/imports/batches.js';
import { listImportBatches, listImportItems } from '../../../services/imports/items.js';
import { storedContents } from '../../../services/imports/known.js';
import { access, visibleTo } from '../../access.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { poll, preferredWait, waitFor } from '../../http/prefer.js';
import { acceptArchiveImport, acceptMultipartImport, acceptPdbImport } from '../../intake/imports.js';
import { requestJson } from '../../middleware/jsonBody.js';
import { errorSchema } from '../../openapi.js';
import { presentAcceptedImport, presentImportItem, presentImportSummaries, presentImportSummary } from '../../presenters/imports.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import {
  acceptedImportSchema,
  checkContentBody,
  checkContentSchema,
  importFieldsDoc,
  importQuery,
  importSchema,
  importSummarySchema,
  listImportsQuery,
} from './schema.js';

const itemCursor = z.object({ after: z.number().int() });
const batchCursor = z.object({ createdAt: z.string(), id: z.uuid() });

export function importRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Imports';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/imports',
      access: { on: 'project', need: 'write' },
      summary:
        'Bulk import: many files (multipart, repeat the "file" field), one archive (zip, tar, tar.gz; as the body or as the one file), or JSON {"pdbIds": [...]} fetched from the PDB mirror',
      tag,
      params: idParams,
      rawBody: { contentType: 'multipart/form-data', description: 'The files (or one archive) and fields applied to every item', fields: importFieldsDoc },
      responses: {
        200: { description: 'With Prefer: wait=N, the import once it ended in time (state and counts)', schema: z.object({ import: importSummarySchema }) },
        202: { description: 'Accepted: follow the import (Location) or its job (jobId, with /v1/jobs/:id/events)', schema: acceptedImportSchema },
        400: { description: 'Bad request (invalid PDB ids, fields or multipart)', schema: errorSchema },
        413: { description: 'Too many files or too many bytes for one import', schema: errorSchema },
        415: { description: 'A body that is not an archive', schema: errorSchema },
        422: { description: 'Metadata that does not fit the project’s schema', schema: errorSchema },
        507: { description: 'The import as a whole would pass the quota: nothing is stored', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      const project = await access(app.orm.em.fork(), user).project(params.id, 'write');
      const batch = koa.is('application/json')
        ? await acceptPdbImport(app, project.owner, project.id, requestJson(koa))
        : koa.is('multipart/form-data')
          ? await acceptMultipartImport(app, koa, project.owner, project.id, user.id)
          : await acceptArchiveImport(app, koa, project.owner, project.id, user.id);
      koa.set('Location', `/v1/imports/${batch.id}`);
      const ended = await waitFor(
        preferredWait(koa),
        async () => {
          const em = app.orm.em.fork();
          const now = await access(em, user).importBatch(batch.id);
          return LIVE_IMPORT_BATCH_STATES.includes(now.state) ? undefined : presentImportSummary(now, await countsOf(em, now.id));
        },
        poll,
      );
      if (ended) return { import: ended };
      koa.status = 202;
      return presentAcceptedImport(batch);
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/imports/check',
      access: { on: 'project', need: 'read' },
      summary:
        'Which of these contents (sha256 of the unpacked bytes) the project already holds as a current version: what an import would skip as already_stored, so a client can leave those files out',
      tag,
      params: idParams,
      body: checkContentBody,
      responses: { 200: { description: 'The contents already stored', schema: checkContentSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'read');
      return { stored: await storedContents(em, project.id, body.sha256) };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/imports',
      access: { user: 'read' },
      summary: 'Your imports, newest first (counts, no items)',
      tag,
      query: listImportsQuery,
      responses: { 200: { description: 'A page of imports', schema: z.object({ items: z.array(importSummarySchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const after = decodeCursor(query.cursor, batchCursor);
      const batches = await listImportBatches(em, await visibleTo(em, user), {
        limit: query.limit,
        project: query.project,
        after: after && { createdAt: new Date(after.createdAt), id: after.id },
      });
      const page = batches.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        items: await presentImportSummaries(em, page),
        nextCursor: batches.length > query.limit && last ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id }) : null,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/imports/:id',
      access: { on: 'import', need: 'read' },
      summary: 'An import: state, counts and its items (paged, ?state= filter), read from Postgres (it survives a Redis loss)',
      tag,
      params: idParams,
      query: importQuery,
      responses: { 200: { description: 'The import', schema: importSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, query, user }) => {
      const em = app.orm.em.fork();
      const batch = await access(em, user).importBatch(params.id);
      const after = decodeCursor(query.cursor, itemCursor);
      const items = await listImportItems(em, batch.id, {
        limit: query.limit,
        states: query.state as ImportItem['state'][] | undefined,
        after: after?.after,
      });
      const page = items.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        ...presentImportSummary(batch, await countsOf(em, batch.id)),
        items: page.map(presentImportItem),
        nextCursor: items.length > query.limit && last ? encodeCursor({ after: last.position }) : null,
      };
    },
  );
  return router;
}
