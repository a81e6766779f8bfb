import Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { z } from 'zod';
import type { User } from '../../../entities/User.js';
import type { AppContext } from '../../../runtime/context.js';
import { importProjectMetadata, metadataMisfits, setMetadataSchema, setProjectMetadata, setStructureMetadata } from '../../../services/metadata/changes.js';
import { compileMetadataSchema, type Metadata, mergePatch } from '../../../services/metadata/metadata.js';
import { exportProjectMetadata, ImportFileError, metadataToCsv, rowsFromCsv, rowsFromJson } from '../../../services/metadata/transfer.js';
import { enqueueIndex, enqueueIndexAll } from '../../../services/search/indexing.js';
import { access } from '../../access.js';
import { ApiError } from '../../errors.js';
import { attachment } from '../../http/download.js';
import { checkedMetadata } from '../../metadata.js';
import { requestJson } from '../../middleware/jsonBody.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams, metadataSchema } from '../../schemas/common.js';

const metadataResponse = { 200: { description: 'The metadata object', schema: metadataSchema } };
const exportQuery = z.object({ format: z.enum(['json', 'csv']).default('json') });
const importQuery = z.object({ format: z.enum(['json', 'csv']).optional() });
const MAX_CSV_BYTES = 20 * 1024 * 1024;

async function readText(koa: Context, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of koa.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new ApiError(413, 'body_too_large', `A CSV import may be at most ${limit} bytes.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Metadata of structures and projects (GET, PUT replaces, PATCH merges as a JSON merge patch,
 * DELETE empties), the optional per-project JSON schema structure metadata must fit, and a whole
 * project's metadata exported and imported as JSON or CSV.
 */
export function metadataRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Metadata';

  const structureMetadata = async (em: EntityManager, user: User, id: string, change: (current: Metadata) => Metadata) => {
    const structure = await access(em, user).structure(id, 'write');
    await setStructureMetadata(em, structure, await checkedMetadata(em, structure.project, change(structure.metadata)));
    await enqueueIndex(app.queues, structure.id);
    return structure.metadata;
  };

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/metadata',
      access: { on: 'structure', need: 'read' },
      summary: 'The metadata of a structure',
      tag,
      params: idParams,
      responses: metadataResponse,
    },
    async ({ params, user }) => (await access(app.orm.em.fork(), user).structure(params.id, 'read', { trashed: true })).metadata,
  );
  route(
    router,
    app,
    {
      method: 'put',
      path: '/v1/structures/:id/metadata',
      access: { on: 'structure', need: 'write' },
      summary: "Replace a structure's metadata (checked against the project's metadata schema)",
      tag,
      params: idParams,
      body: metadataSchema,
      responses: { ...metadataResponse, 422: { description: "Does not fit the project's metadata schema", schema: errorSchema } },
    },
    async ({ params, body, user }) => structureMetadata(app.orm.em.fork(), user, params.id, () => body),
  );
  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/structures/:id/metadata',
      access: { on: 'structure', need: 'write' },
      summary: "Merge into a structure's metadata (JSON merge patch: null removes a key)",
      tag,
      params: idParams,
      body: metadataSchema,
      responses: { ...metadataResponse, 422: { description: "Does not fit the project's metadata schema", schema: errorSchema } },
    },
    async ({ params, body, user }) => structureMetadata(app.orm.em.fork(), user, params.id, (current) => mergePatch(current, body)),
  );
  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/structures/:id/metadata',
      access: { on: 'structure', need: 'write' },
      summary: "Empty a structure's metadata",
      tag,
      params: idParams,
      responses: { 204: { description: 'Emptied' }, 422: { description: 'The project schema requires metadata', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      await structureMetadata(app.orm.em.fork(), user, params.id, () => ({}));
      koa.status = 204;
      return undefined;
    },
  );

  const projectMetadata = async (user: User, id: string, change: (current: Metadata) => Metadata) => {
    const em = app.orm.em.fork();
    const project = await access(em, user).project(id, 'write');
    await setProjectMetadata(em, project, change(project.metadata));
    return project.metadata;
  };
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects/:id/own-metadata',
      access: { on: 'project', need: 'read' },
      summary: "The project's own metadata (not its structures')",
      tag,
      params: idParams,
      responses: metadataResponse,
    },
    async ({ params, user }) => (await access(app.orm.em.fork(), user).project(params.id, 'read')).metadata,
  );
  route(
    router,
    app,
    {
      method: 'put',
      path: '/v1/projects/:id/own-metadata',
      access: { on: 'project', need: 'write' },
      summary: "Replace the project's own metadata",
      tag,
      params: idParams,
      body: metadataSchema,
      responses: metadataResponse,
    },
    async ({ params, body, user }) => projectMetadata(user, params.id, () => body),
  );
  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/projects/:id/own-metadata',
      access: { on: 'project', need: 'write' },
      summary: "Merge into the project's own metadata (JSON merge patch)",
      tag,
      params: idParams,
      body: metadataSchema,
      responses: metadataResponse,
    },
    async ({ params, body, user }) => projectMetadata(user, params.id, (current) => mergePatch(current, body)),
  );
  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/projects/:id/own-metadata',
      access: { on: 'project', need: 'write' },
      summary: "Empty the project's own metadata",
      tag,
      params: idParams,
      responses: { 204: { description: 'Emptied' } },
    },
    async ({ params, user, koa }) => {
      await projectMetadata(user, params.id, () => ({}));
      koa.status = 204;
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects/:id/metadata-schema',
      access: { on: 'project', need: 'read' },
      summary: "The JSON schema the project's structure metadata must fit (null: none)",
      tag,
      params: idParams,
      responses: { 200: { description: 'The schema', schema: z.object({ schema: metadataSchema.nullable() }) } },
    },
    async ({ params, user }) => ({ schema: (await access(app.orm.em.fork(), user).project(params.id, 'read')).metadataSchema ?? null }),
  );
  route(
    router,
    app,
    {
      method: 'put',
      path: '/v1/projects/:id/metadata-schema',
      access: { on: 'project', need: 'own' },
      summary:
        'Set the JSON schema (draft 7 / 2019 keywords, ajv) for the project\'s structure metadata, sent as {"schema": …} like GET answers (the bare schema is accepted too); existing metadata must fit it',
      tag,
      params: idParams,
      // {"schema": …} mirrors GET; a bare schema is taken as well (JSON Schema has no "schema" keyword, so the two never clash).
      body: z.union([z.strictObject({ schema: metadataSchema }), metadataSchema]),
      responses: {
        200: { description: 'The schema', schema: z.object({ schema: metadataSchema }) },
        400: { description: 'Not a usable JSON schema', schema: errorSchema },
        409: { description: 'Metadata of existing structures does not fit', schema: errorSchema },
      },
    },
    async ({ params, body: sent, user }) => {
      const body = (isWrappedSchema(sent) ? sent.schema : sent) as Metadata;
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'own');
      try {
        compileMetadataSchema(body);
      } catch (error) {
        throw new ApiError(400, 'invalid_metadata_schema', `The metadata schema is not a usable JSON schema: ${(error as Error).message}`);
      }
      const misfits = await metadataMisfits(em, project.id, body);
      if (misfits.length > 0) {
        throw new ApiError(
          409,
          'metadata_schema_conflict',
          `${misfits.length} structure${misfits.length > 1 ? 's have' : ' has'} metadata that does not fit this schema (first: "${misfits[0].name}": ${misfits[0].problems[0].message}); fix the metadata first.`,
          { structures: misfits.slice(0, 50) },
        );
      }
      await setMetadataSchema(em, project, body);
      return { schema: body };
    },
  );
  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/projects/:id/metadata-schema',
      access: { on: 'project', need: 'own' },
      summary: 'Remove the metadata schema',
      tag,
      params: idParams,
      responses: { 204: { description: 'Removed' } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'own');
      await setMetadataSchema(em, project, null);
      koa.status = 204;
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects/:id/metadata',
      access: { on: 'project', need: 'read' },
      summary: "Export the metadata, names, descriptions and tags of a project's structures as JSON or CSV (trash excluded)",
      tag,
      params: idParams,
      query: exportQuery,
      responses: { 200: { description: 'JSON {project, structures} or CSV (id, name, description, tags, metadata.<key>...)' } },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'read');
      const exported = await exportProjectMetadata(em, project);
      if (query.format === 'json') return exported;
      koa.type = 'text/csv; charset=utf-8';
      koa.set('Content-Disposition', attachment(`${project.name.replace(/[^A-Za-z0-9._-]+/g, '_')}-metadata.csv`));
      koa.body = metadataToCsv(exported);
      return undefined;
    },
  );
  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/metadata',
      access: { on: 'project', need: 'write' },
      summary: 'Import metadata for a whole project (JSON as exported, or CSV): rows matched by id, else by name; all rows or none',
      tag,
      params: idParams,
      query: importQuery,
      rawBody: { contentType: 'text/csv', description: 'CSV as exported, or application/json {"structures": [...]}' },
      responses: {
        200: { description: 'Applied', schema: z.object({ rows: z.number(), updated: z.number(), unchanged: z.number() }) },
        422: { description: 'Some rows are invalid (details.rows: row number and reason); nothing was applied', schema: errorSchema },
      },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'write');
      const isCsv = query.format === 'csv' || (!query.format && !!koa.is('text/csv', 'text/plain', 'application/csv'));
      let rows: { row: number; value: unknown }[];
      let projectMetadata: unknown;
      try {
        if (isCsv) rows = rowsFromCsv(await readText(koa, MAX_CSV_BYTES)).map((r) => ({ row: r.row, value: r.value }));
        else ({ rows, projectMetadata } = rowsFromJson(requestJson(koa)));
      } catch (error) {
        if (error instanceof ImportFileError) throw new ApiError(400, 'invalid_import', error.message);
        throw error;
      }
      if (projectMetadata !== undefined && (typeof projectMetadata !== 'object' || projectMetadata === null || Array.isArray(projectMetadata))) {
        throw new ApiError(422, 'import_invalid', 'project.metadata must be a JSON object.', { rows: [] });
      }
      const outcome = await importProjectMetadata(em, project.id, rows, projectMetadata as Metadata | undefined);
      if (!outcome.ok) {
        const first = outcome.errors[0];
        throw new ApiError(
          422,
          'import_invalid',
          `Nothing was imported: ${outcome.errors.length} row${outcome.errors.length > 1 ? 's are' : ' is'} invalid (first: row ${first.row}, ${first.reason}).`,
          { rows: outcome.errors },
        );
      }
      const changed = outcome.changed;
      await enqueueIndexAll(
        app.queues,
        changed.map((s) => s.id),
      );
      return { rows: rows.length, updated: changed.length, unchanged: rows.length - changed.length };
    },
  );

  return router;
}

function isWrappedSchema(body: Record<string, unknown>): body is { schema: Metadata } {
  const keys = Object.keys(body);
  return keys.length === 1 && keys[0] === 'schema' && typeof body.schema === 'object' && body.schema !== null && !Array.isArray(body.schema);
}
