import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { MEDIA_TYPES } from '../../../formats/types.js';
import type { AppContext } from '../../../runtime/context.js';
import { chargeDerivative } from '../../../services/conversions/derivations.js';
import { mergePatch } from '../../../services/metadata/metadata.js';
import { refreshUsage } from '../../../services/quota/usage.js';
import { enqueueIndex } from '../../../services/search/indexing.js';
import { changeStructure, restoreStructure, trashStructure } from '../../../services/structures/changes.js';
import { countDownload } from '../../../services/structures/counters.js';
import { listStructures } from '../../../services/structures/list.js';
import { findVersion, listVersions, storedBlob, versionOrCurrent } from '../../../services/versions/lookup.js';
import { purgeStructure } from '../../../services/versions/trash.js';
import { access, visibleTo } from '../../access.js';
import { setDerivationHeaders } from '../../downloads/conversion.js';
import { versionFile } from '../../downloads/versionFile.js';
import { notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { attachment, etagOf, redirectToStore, sendStoredFile } from '../../http/download.js';
import { preferredWait } from '../../http/prefer.js';
import { type AcceptedUpload, acceptUpload, waitForUpload } from '../../intake/uploads.js';
import { checkedMetadata } from '../../metadata.js';
import { errorSchema } from '../../openapi.js';
import { presentStructure, presentStructures, presentVersion, presentVersions } from '../../presenters/structures.js';
import { presentAcceptedUpload, presentStoredUpload, uploadRefusal } from '../../presenters/uploads.js';
import { route } from '../../route.js';
import { idParams, listQuery } from '../../schemas/common.js';
import { acceptedSchema, structureSchema, versionParams, versionSchema } from '../../schemas/structures.js';
import { deleteQuery, downloadQuery, listStructuresQuery, updateStructureBody, uploadFieldsDoc } from './schema.js';

async function reindex(app: AppContext, structure: { id: string }) {
  await enqueueIndex(app.queues, structure.id);
}

const uploadResponses = {
  202: { description: 'Accepted: poll the upload (Location header)', schema: acceptedSchema },
  201: { description: 'Stored (with Prefer: wait=N and the pipeline done in time)' },
  413: { description: 'Too large', schema: errorSchema },
  415: { description: 'Not a structure format molvault reads', schema: errorSchema },
  507: { description: 'Over quota: details.quotaBytes, usedBytes, reservedBytes, requestedBytes', schema: errorSchema },
  422: { description: 'Invalid structure: details.problems says what is wrong', schema: errorSchema },
};

/**
 * 202 with where to follow the upload; or, with `Prefer: wait=N` and the upload ended in time, 201
 * with the structure, or the upload's refusal.
 */
async function answerUpload(app: AppContext, koa: Context, accepted: AcceptedUpload) {
  const finished = await waitForUpload(app, accepted.uploadId, preferredWait(koa));
  if (!finished) {
    koa.status = 202;
    koa.set('Location', `/v1/uploads/${accepted.uploadId}`);
    return presentAcceptedUpload(accepted);
  }
  if (finished.state !== 'stored') throw uploadRefusal(finished);
  koa.status = 201;
  koa.set('Location', `/v1/structures/${finished.structureId}`);
  return presentStoredUpload(app.orm.em.fork(), finished);
}

/** Keyset cursor: the sort value and id of the last row, so inserts and deletes never shift a page. */
const keysetCursor = z.object({ after: z.string(), id: z.uuid() });
const versionCursor = z.object({ before: z.number().int() });

export function structureRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Structures';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/structures',
      access: { on: 'project', need: 'write' },
      summary: 'Upload a structure file as a new structure',
      tag,
      params: idParams,
      rawBody: { contentType: 'multipart/form-data', description: 'The file and its fields', fields: uploadFieldsDoc },
      responses: uploadResponses,
    },
    async ({ params, user, koa }) => {
      const project = await access(app.orm.em.fork(), user).project(params.id, 'write');
      return answerUpload(app, koa, await acceptUpload(app, koa, user, { projectId: project.id, payerId: project.owner }));
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/versions',
      access: { on: 'structure', need: 'write' },
      summary: 'Upload a new version of a structure',
      tag,
      params: idParams,
      rawBody: { contentType: 'multipart/form-data', description: 'The file and its fields', fields: uploadFieldsDoc },
      responses: uploadResponses,
    },
    async ({ params, user, koa }) => {
      const structure = await access(app.orm.em.fork(), user).structure(params.id, 'write');
      return answerUpload(app, koa, await acceptUpload(app, koa, user, { projectId: structure.project, structureId: structure.id, payerId: structure.owner }));
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures',
      access: { user: 'read' },
      summary: 'List your structures',
      tag,
      query: listStructuresQuery,
      responses: { 200: { description: 'A page of structures', schema: z.object({ items: z.array(structureSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const [field, direction] = query.sort.startsWith('-') ? [query.sort.slice(1), 'desc' as const] : [query.sort, 'asc' as const];
      const orderField = field === 'created' ? 'createdAt' : field === 'updated' ? 'updatedAt' : 'name';
      const after = decodeCursor(query.cursor, keysetCursor);
      const rows = await listStructures(
        em,
        await visibleTo(em, user),
        {
          project: query.project,
          kind: query.kind,
          tags: query.tag === undefined ? [] : Array.isArray(query.tag) ? query.tag : query.tag.split(','),
          nameContains: query.q || undefined,
          format: query.format || undefined,
          trashed: query.trashed === 'true',
        },
        { field: orderField, direction },
        { limit: query.limit, after: after && { value: orderField === 'name' ? after.after : new Date(after.after), id: after.id } },
      );
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      const lastValue = last ? (orderField === 'name' ? last.name : last[orderField].toISOString()) : '';
      return {
        items: await presentStructures(em, page),
        nextCursor: rows.length > query.limit && last ? encodeCursor({ after: lastValue, id: last.id }) : null,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id',
      access: { on: 'structure', need: 'read' },
      summary: 'Get a structure with its current version and summary',
      tag,
      params: idParams,
      responses: { 200: { description: 'The structure', schema: structureSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      // One statement: the view counted and the structure presented by Postgres (see viewStructureJson).
      const structure = await access(app.orm.em.fork(), user).viewStructure(params.id);
      koa.type = 'application/json';
      koa.body = Buffer.from(structure);
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/structures/:id',
      access: { on: 'structure', need: 'write' },
      summary: 'Change name, description, tags or metadata',
      tag,
      params: idParams,
      body: updateStructureBody,
      responses: { 200: { description: 'The structure', schema: structureSchema } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write');
      await changeStructure(em, structure, {
        name: body.name,
        description: body.description,
        tags: body.tags,
        // Metadata merges (JSON merge patch: null removes a key); PUT /v1/structures/:id/metadata replaces.
        metadata: body.metadata === undefined ? undefined : await checkedMetadata(em, structure.project, mergePatch(structure.metadata, body.metadata)),
      });
      await reindex(app, structure);
      return presentStructure(em, structure.id);
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/structures/:id',
      access: { on: 'structure', need: 'write' },
      summary: 'Move a structure to the trash, or purge it with ?purge=true',
      tag,
      params: idParams,
      query: deleteQuery,
      responses: { 204: { description: 'Trashed or purged' } },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, query.purge === 'true' ? 'own' : 'write', { trashed: true });
      const target = { targetType: 'structure', targetId: structure.id, projectId: structure.project, details: { name: structure.name } };
      await em.transactional(async (tx) => {
        if (query.purge === 'true') {
          // Rows and every blob nothing else refers to, at once: usage drops now, not at the next GC.
          await purgeStructure(tx, app.blobs, structure.id);
          await auditRequest(tx, koa, { action: 'structure.purge', ...target });
        } else {
          await trashStructure(tx, structure);
          await auditRequest(tx, koa, { action: 'structure.delete', ...target });
        }
      });
      await refreshUsage(em, structure.owner); // trash still counts (in its own category); a purge frees the bytes
      await reindex(app, structure);
      koa.status = 204;
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/restore',
      access: { on: 'structure', need: 'write' },
      summary: 'Restore a structure from the trash',
      tag,
      params: idParams,
      responses: { 200: { description: 'The structure', schema: structureSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write', { trashed: true });
      await em.transactional(async (tx) => {
        await restoreStructure(tx, structure);
        await auditRequest(tx, koa, { action: 'structure.restore', targetType: 'structure', targetId: structure.id, projectId: structure.project });
      });
      await refreshUsage(em, structure.owner);
      await reindex(app, structure);
      return presentStructure(em, structure.id);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/versions',
      access: { on: 'structure', need: 'read' },
      summary: 'List the versions of a structure, newest first',
      tag,
      params: idParams,
      query: listQuery,
      responses: { 200: { description: 'Versions', schema: z.object({ items: z.array(versionSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ params, query, user }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'read', { trashed: true });
      const before = decodeCursor(query.cursor, versionCursor);
      const rows = await listVersions(em, structure.id, { limit: query.limit, before: before?.before });
      const versions = rows.slice(0, query.limit);
      const last = versions[versions.length - 1];
      return {
        items: await presentVersions(em, versions),
        nextCursor: rows.length > query.limit && last ? encodeCursor({ before: last.number }) : null,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/versions/:n',
      access: { on: 'structure', need: 'read' },
      summary: 'Get one version',
      tag,
      params: versionParams,
      responses: { 200: { description: 'The version', schema: versionSchema } },
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'read', { trashed: true });
      const version = await findVersion(em, structure.id, params.n);
      if (!version) throw notFound('version');
      return presentVersion(em, version);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/download',
      access: { on: 'structure', need: 'read' },
      summary: 'Download a version (default: current) in its original format or converted (?format=); supports ETag and Range',
      tag,
      params: idParams,
      query: downloadQuery,
      responses: {
        200: {
          description:
            'The original bytes, or the converted file (X-Molvault-Engine: engine and version; X-Molvault-Conversion-Loss: what the conversion lost)',
          contentType: 'application/octet-stream',
        },
        202: { description: 'The conversion is under way: poll the job (Location header)' },
        206: { description: 'The requested range', contentType: 'application/octet-stream' },
        302: { description: 'With DOWNLOAD_REDIRECT=1 on an S3 store: a short-lived presigned URL of the bytes (Location header)' },
        304: { description: 'Not modified (If-None-Match)' },
        415: { description: 'No installed engine can produce that format (the message names the engine that would)', schema: errorSchema },
        422: { description: 'The conversion failed (the engine could not read the file, or wrote something unreadable)', schema: errorSchema },
        416: { description: 'Range not satisfiable', schema: errorSchema },
      },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'read', { trashed: true });
      const version = await versionOrCurrent(em, structure, query.version);
      if (!version) throw notFound('version');
      const file = await versionFile(app, koa, em, structure.owner, version, query.format);
      if ('underWay' in file) {
        koa.status = 202;
        koa.set('Location', `/v1/jobs/${file.underWay.jobId}`);
        return file.underWay.body;
      }
      const { blobSha256, format, filename } = file;
      if (file.derivation) {
        setDerivationHeaders(koa, file.derivation);
        await chargeDerivative(em, structure.owner, file.derivation.id);
      }
      const blob = await storedBlob(em, blobSha256);
      koa.set('Cache-Control', 'private, max-age=31536000, immutable');
      koa.set('Content-Disposition', attachment(filename));
      koa.type = MEDIA_TYPES[format] ?? 'application/octet-stream';
      if (await redirectToStore(koa, app.blobs, app.config, blob.sha256)) {
        if (koa.status === 302) await countDownload(em, structure.id);
        return undefined;
      }
      const sent = sendStoredFile(koa, { etag: etagOf(blob.sha256), size: blob.size, noun: 'file', read: (range) => app.blobs.read(blob.sha256, range) });
      if (sent === 'whole') await countDownload(em, structure.id);
      return undefined;
    },
  );

  return router;
}
