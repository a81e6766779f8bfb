import Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { Blob } from '../../../entities/Blob.js';
import { Structure } from '../../../entities/Structure.js';
import { StructureVersion } from '../../../entities/StructureVersion.js';
import { serializeVersion } from '../../../entities/serialize.js';
import { sessionConversionRefusal } from '../../../formats/session.js';
import { FORMATS, type Format, MEDIA_TYPES } from '../../../formats/types.js';
import type { AppContext } from '../../../runtime/context.js';
import { STRUCTURE_JSON } from '../../../search/cards.js';
import { chargeDerivative } from '../../../services/conversions/derivations.js';
import { mergePatch } from '../../../services/metadata/metadata.js';
import { refreshUsage } from '../../../services/quota/usage.js';
import { enqueueIndex } from '../../../services/search/indexing.js';
import { purgeStructure } from '../../../services/versions/trash.js';
import { acceptUpload } from '../../acceptUpload.js';
import { decodeCursor, encodeCursor, idParams, listQuery } from '../../common.js';
import { ApiError, notFound } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { checkedMetadata } from '../metadata/check.js';
import { findOwnProject } from '../projects/index.js';
import { derivativeFor, setDerivationHeaders } from './conversion.js';
import { presentStructure, presentStructures } from './present.js';
import {
  acceptedSchema,
  deleteQuery,
  downloadQuery,
  listStructuresQuery,
  structureSchema,
  updateStructureBody,
  uploadFieldsDoc,
  versionParams,
  versionSchema,
} from './schema.js';

export async function findOwnStructure(em: EntityManager, userId: string, id: string, options: { includeTrashed?: boolean } = {}) {
  const structure = await em.findOne(Structure, { id, owner: userId });
  if (!structure || (structure.deletedAt && !options.includeTrashed)) throw notFound('structure');
  return structure;
}

async function reindex(app: AppContext, structure: Structure) {
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
      summary: 'Upload a structure file as a new structure',
      tag,
      params: idParams,
      rawBody: { contentType: 'multipart/form-data', description: 'The file and its fields', fields: uploadFieldsDoc },
      responses: uploadResponses,
    },
    async ({ params, user, koa }) => {
      const project = await findOwnProject(app.orm.em.fork(), user.id, params.id);
      await acceptUpload(app, koa, user, { projectId: project.id });
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/versions',
      summary: 'Upload a new version of a structure',
      tag,
      params: idParams,
      rawBody: { contentType: 'multipart/form-data', description: 'The file and its fields', fields: uploadFieldsDoc },
      responses: uploadResponses,
    },
    async ({ params, user, koa }) => {
      const structure = await findOwnStructure(app.orm.em.fork(), user.id, params.id);
      await acceptUpload(app, koa, user, { projectId: structure.project, structureId: structure.id });
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures',
      summary: 'List your structures',
      tag,
      query: listStructuresQuery,
      responses: { 200: { description: 'A page of structures', schema: z.object({ items: z.array(structureSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const where: Record<string, unknown> = { owner: user.id, deletedAt: query.trashed === 'true' ? { $ne: null } : null };
      if (query.project) where.project = query.project;
      if (query.kind) where.kind = query.kind;
      const tags = query.tag === undefined ? [] : Array.isArray(query.tag) ? query.tag : query.tag.split(',');
      if (tags.length) where.tags = { $contains: tags };
      if (query.q) where.name = { $ilike: `%${query.q.replace(/[%_\\]/g, '\\$&')}%` };
      if (query.format) {
        where.currentVersion = { format: query.format };
      }
      const [field, direction] = query.sort.startsWith('-') ? [query.sort.slice(1), 'desc'] : [query.sort, 'asc'];
      const orderField = field === 'created' ? 'createdAt' : field === 'updated' ? 'updatedAt' : 'name';
      const after = decodeCursor(query.cursor, keysetCursor);
      if (after) {
        const value = orderField === 'name' ? after.after : new Date(after.after);
        const beyond = direction === 'desc' ? '$lt' : '$gt';
        where.$and = [{ $or: [{ [orderField]: { [beyond]: value } }, { [orderField]: value, id: { [beyond]: after.id } }] }];
      }
      const rows = await em.find(Structure, where, { orderBy: { [orderField]: direction, id: direction }, limit: query.limit + 1 });
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
      summary: 'Get a structure with its current version and summary',
      tag,
      params: idParams,
      responses: { 200: { description: 'The structure', schema: structureSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      // One statement: the view counted (its own commit, not waiting for the WAL: RELAXED_COMMIT) and
      // the structure presented by Postgres, as serializeStructure does. Reads are what an import slows
      // down, each round trip waiting for a core; this was five of them and an ORM hydration.
      const [row] = await app.orm.em.fork().execute<{ structure: string }[]>(
        `with ${RELAXED_COMMIT},
              cs as (update structures set view_count = view_count + 1 from relaxed where id = ? and owner_id = ? returning structures.*)
         select ${STRUCTURE_JSON} as structure from cs`,
        [params.id, user.id],
      );
      if (!row) throw notFound('structure');
      koa.type = 'application/json';
      koa.body = Buffer.from(row.structure);
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/structures/:id',
      summary: 'Change name, description, tags or metadata',
      tag,
      params: idParams,
      body: updateStructureBody,
      responses: { 200: { description: 'The structure', schema: structureSchema } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id);
      if (body.name !== undefined) structure.name = body.name;
      if (body.description !== undefined) structure.description = body.description;
      if (body.tags !== undefined) structure.tags = body.tags;
      // Metadata merges (JSON merge patch: null removes a key); PUT /v1/structures/:id/metadata replaces.
      if (body.metadata !== undefined) structure.metadata = await checkedMetadata(em, structure.project, mergePatch(structure.metadata, body.metadata));
      await em.flush();
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
      summary: 'Move a structure to the trash, or purge it with ?purge=true',
      tag,
      params: idParams,
      query: deleteQuery,
      responses: { 204: { description: 'Trashed or purged' } },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      if (query.purge === 'true') {
        // Rows and every blob nothing else refers to, at once: usage drops now, not at the next GC.
        await purgeStructure(em, app.blobs, structure.id);
      } else if (!structure.deletedAt) {
        structure.deletedAt = new Date();
        await em.flush();
      }
      await refreshUsage(em, user.id); // trash still counts (in its own category); a purge frees the bytes
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
      summary: 'Restore a structure from the trash',
      tag,
      params: idParams,
      responses: { 200: { description: 'The structure', schema: structureSchema } },
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      structure.deletedAt = null;
      await em.flush();
      await refreshUsage(em, user.id);
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
      summary: 'List the versions of a structure, newest first',
      tag,
      params: idParams,
      query: listQuery,
      responses: { 200: { description: 'Versions', schema: z.object({ items: z.array(versionSchema), nextCursor: z.string().nullable() }) } },
    },
    async ({ params, query, user }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      const before = decodeCursor(query.cursor, versionCursor);
      const where = before ? { structure: structure.id, number: { $lt: before.before } } : { structure: structure.id };
      const rows = await em.find(StructureVersion, where, { orderBy: { number: 'desc' }, limit: query.limit + 1 });
      const versions = rows.slice(0, query.limit);
      const sizes = await blobSizes(em, versions);
      const last = versions[versions.length - 1];
      return {
        items: versions.map((v) => serializeVersion(v, sizes.get(v.blob) ?? 0)),
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
      summary: 'Get one version',
      tag,
      params: versionParams,
      responses: { 200: { description: 'The version', schema: versionSchema } },
    },
    async ({ params, user }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      const version = await em.findOne(StructureVersion, { structure: structure.id, number: params.n });
      if (!version) throw notFound('version');
      const sizes = await blobSizes(em, [version]);
      return serializeVersion(version, sizes.get(version.blob) ?? 0);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/download',
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
        304: { description: 'Not modified (If-None-Match)' },
        415: { description: 'No installed engine can produce that format (the message names the engine that would)', schema: errorSchema },
        422: { description: 'The conversion failed (the engine could not read the file, or wrote something unreadable)', schema: errorSchema },
        416: { description: 'Range not satisfiable', schema: errorSchema },
      },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await findOwnStructure(em, user.id, params.id, { includeTrashed: true });
      const version = query.version
        ? await em.findOne(StructureVersion, { structure: structure.id, number: query.version })
        : structure.currentVersion
          ? await em.findOne(StructureVersion, { id: structure.currentVersion })
          : null;
      if (!version) throw notFound('version');
      const wanted = query.format?.toLowerCase();
      let blobSha256 = version.blob;
      let format = version.format as Format;
      let filename = version.filename.replace(/\.(gz|bz2)$/i, '');
      if (wanted && wanted !== 'original' && wanted !== version.format) {
        if (!(FORMATS as readonly string[]).includes(wanted)) {
          throw new ApiError(400, 'unknown_format', `"${query.format}" is not a format name; use one of ${FORMATS.join(', ')}.`);
        }
        const sessionRefusal = sessionConversionRefusal(version.format, wanted);
        if (sessionRefusal) throw new ApiError(sessionRefusal.status, sessionRefusal.code, sessionRefusal.message, { from: version.format, to: wanted });
        const derivation = await derivativeFor(app, koa, em, user.id, version, wanted as Format);
        if (!derivation) return undefined; // 202: the conversion is under way
        setDerivationHeaders(koa, derivation);
        await chargeDerivative(em, user.id, derivation.id);
        blobSha256 = derivation.blob;
        format = wanted as Format;
        filename = `${filename.replace(/\.[A-Za-z0-9]{1,5}$/, '')}.${format}`;
      }
      const blob = await em.findOneOrFail(Blob, { sha256: blobSha256 });
      const etag = `"${blob.sha256}"`;
      koa.set('ETag', etag);
      koa.set('Accept-Ranges', 'bytes');
      koa.set('Cache-Control', 'private, max-age=31536000, immutable');
      koa.set('Content-Disposition', `attachment; filename="${filename.replace(/["\\\r\n]/g, '_')}"`);
      koa.type = MEDIA_TYPES[format] ?? 'application/octet-stream';
      const ifNoneMatch = koa.get('if-none-match');
      if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
        koa.status = 304;
        return undefined;
      }
      const range = parseRange(koa.get('range'), blob.size, koa.get('if-range'), etag);
      if (range === 'unsatisfiable') {
        koa.set('Content-Range', `bytes */${blob.size}`);
        throw new ApiError(416, 'range_not_satisfiable', `The requested range is outside the file (${blob.size} bytes).`);
      }
      if (range) {
        koa.status = 206;
        koa.set('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`);
        koa.length = range.end - range.start + 1;
        koa.body = app.blobs.read(blob.sha256, range);
      } else {
        koa.status = 200;
        koa.length = blob.size;
        koa.body = app.blobs.read(blob.sha256);
        await bumpCounter(em, structure.id, 'download_count');
      }
      return undefined;
    },
  );

  return router;
}

async function blobSizes(em: EntityManager, versions: StructureVersion[]) {
  if (versions.length === 0) return new Map<string, number>();
  const blobs = await em.find(Blob, { sha256: { $in: [...new Set(versions.map((v) => v.blob))] } });
  return new Map(blobs.map((b) => [b.sha256, b.size]));
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range; multiple ranges are answered with the whole file. */
export function parseRange(header: string, size: number, ifRange: string, etag: string): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header || (ifRange && ifRange !== etag)) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, from, to] = match;
  if (from === '' && to === '') return undefined;
  let start: number;
  let end: number;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(from);
    end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/**
 * A CTE (`relaxed`, joined by the update) that commits its statement without waiting for the WAL:
 * a view or download counter is not worth a disk flush per read, and a read is then not queued
 * behind the fsyncs of an import (a crash may lose the last few counts, nothing else). set_config(…,
 * true) lasts until the statement's own transaction commits, which is where synchronous_commit is
 * read: one round trip instead of BEGIN, SET LOCAL, UPDATE, COMMIT, each a wait for the CPU while
 * an import runs.
 */
const RELAXED_COMMIT = "relaxed as (select set_config('synchronous_commit', 'off', true))";

/** Counts a view or a download (see RELAXED_COMMIT). */
async function bumpCounter(em: EntityManager, structureId: string, counter: 'view_count' | 'download_count'): Promise<number | undefined> {
  const [row] = await em.execute<{ n: string }[]>(
    `with ${RELAXED_COMMIT}
     update structures set ${counter} = ${counter} + 1 from relaxed where id = ? returning ${counter} as n`,
    [structureId],
  );
  return row ? Number(row.n) : undefined;
}
