import Router from '@koa/router';
import { z } from 'zod';
import type { DiffOptions } from '../../../formats/diff.js';
import { FORMAT_LABELS, type Format } from '../../../formats/types.js';
import type { DiffJobData } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import { refreshUsage } from '../../../services/quota/usage.js';
import { enqueueIndex } from '../../../services/search/indexing.js';
import { listTrash } from '../../../services/structures/list.js';
import { requestDiff } from '../../../services/versions/diffs.js';
import { findVersion, versionBefore, versionOrCurrent } from '../../../services/versions/lookup.js';
import { pruneStructure } from '../../../services/versions/pruning.js';
import { rollbackStructure, setPinned } from '../../../services/versions/versions.js';
import { access, visibleTo } from '../../access.js';
import { ApiError, notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { preferredWait } from '../../http/prefer.js';
import { errorSchema } from '../../openapi.js';
import { presentDiff, presentVersionRef } from '../../presenters/diffs.js';
import { presentStructure, presentStructures, presentVersion } from '../../presenters/structures.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { structureSchema, versionParams, versionSchema } from '../../schemas/structures.js';
import { diffQuery, diffSchema, pinBody, rollbackBody, trashItemSchema, trashQuery } from './schema.js';

/** Formats whose files hold atoms Mol* reads; sessions are compared by nothing but their bytes. */
const COMPARABLE: ReadonlySet<string> = new Set(['pdb', 'cif', 'bcif', 'sdf', 'mol', 'mol2', 'xyz']);

const trashCursor = z.object({ after: z.string(), id: z.uuid() });

export function historyRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'History';

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/structures/:id/versions/:n',
      access: { on: 'structure', need: 'write' },
      summary: 'Pin or unpin a version (pinned versions are never pruned)',
      tag,
      params: versionParams,
      body: pinBody,
      responses: { 200: { description: 'The version', schema: versionSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write', { trashed: true });
      const version = await setPinned(em, structure.id, params.n, body.pinned);
      if (!version) throw notFound('version');
      return presentVersion(em, version);
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/rollback',
      access: { on: 'structure', need: 'write' },
      summary: 'Make a new version whose content is an earlier version (history is kept)',
      tag,
      params: idParams,
      body: rollbackBody,
      responses: {
        201: { description: 'The new version and the structure', schema: z.object({ structure: structureSchema, version: versionSchema }) },
        404: { description: 'No such structure or version', schema: errorSchema },
        409: { description: 'That version is already the current one', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write');
      const outcome = await em.transactional(async (tx) => {
        const done = await rollbackStructure(tx, {
          structureId: structure.id,
          ownerId: structure.owner,
          authorId: user.id,
          number: body.version,
          message: body.message,
        });
        if (done.ok) {
          await auditRequest(tx, koa, {
            action: 'structure.rollback',
            targetType: 'structure',
            targetId: structure.id,
            projectId: structure.project,
            details: { toVersion: body.version, newVersion: done.version.number },
          });
        }
        return done;
      });
      if (!outcome.ok) {
        if (outcome.reason === 'already_current') {
          throw new ApiError(409, 'already_current', `Version ${outcome.number} is already the current version; there is nothing to roll back.`, {
            version: outcome.number,
          });
        }
        throw notFound(outcome.reason === 'version_not_found' ? `version ${body.version} of this structure` : 'structure');
      }
      await pruneStructure(em, app.blobs, structure.id);
      await refreshUsage(em, structure.owner); // the rolled-back-to bytes are current again, the replaced ones history
      await enqueueIndex(app.queues, structure.id);
      koa.status = 201;
      koa.set('Location', `/v1/structures/${structure.id}/versions/${outcome.version.number}`);
      return {
        structure: await presentStructure(em, structure.id),
        version: await presentVersion(em, outcome.version),
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/diff',
      access: { on: 'structure', need: 'read' },
      summary:
        'Compare two versions as structures: chains, residues, ligands and atoms added or removed, atoms moved, RMSD, B-factor and occupancy changes (default: the previous version against the current one)',
      tag,
      params: idParams,
      query: diffQuery,
      responses: {
        200: { description: 'The diff', schema: diffSchema },
        202: { description: 'Being computed: poll the job (Location), or send Prefer: wait=N', schema: z.object({ job: z.object({ id: z.string() }) }) },
        400: { description: 'No earlier version to compare with', schema: errorSchema },
        404: { description: 'No such structure or version', schema: errorSchema },
        415: { description: 'A version is not a format with atoms (a session)', schema: errorSchema },
        422: { description: 'The comparison failed', schema: errorSchema },
      },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'read', { trashed: true });
      const to = await versionOrCurrent(em, structure, query.to);
      if (!to) throw notFound(query.to ? `version ${query.to} of this structure` : 'current version');
      let from: Awaited<ReturnType<typeof findVersion>>;
      if (query.from) {
        from = await findVersion(em, structure.id, query.from);
        if (!from) throw notFound(`version ${query.from} of this structure`);
      } else {
        from = await versionBefore(em, structure.id, to.number);
        if (!from) throw new ApiError(400, 'no_earlier_version', `Version ${to.number} has no earlier version to compare with; name one with ?from=.`);
      }
      for (const v of [from, to]) {
        if (!COMPARABLE.has(v.format)) {
          throw new ApiError(
            415,
            'not_comparable',
            `Version ${v.number} is a ${FORMAT_LABELS[v.format as Format] ?? v.format}, which holds no atoms molvault can compare; download both versions instead.`,
          );
        }
      }
      const options: DiffOptions = {
        moveThreshold: query.moveThreshold,
        bfactorThreshold: query.bfactorThreshold,
        occupancyThreshold: query.occupancyThreshold,
        limit: query.limit,
      };
      const data: DiffJobData = {
        structureId: structure.id,
        ownerId: structure.owner,
        from: { sha256: from.blob, format: from.format as Format },
        to: { sha256: to.blob, format: to.format as Format },
        options,
      };
      const outcome = await requestDiff(app.queues, em, data, preferredWait(koa) * 1000);
      if (outcome.state === 'ready') return presentDiff(em, from, to, options, outcome.diff);
      if (outcome.state === 'failed') throw new ApiError(422, 'diff_failed', `The versions could not be compared: ${outcome.reason}`);
      const jobId = outcome.jobId;
      koa.status = 202;
      koa.set('Location', `/v1/jobs/${jobId}`);
      return { job: { id: jobId }, from: presentVersionRef(from), to: presentVersionRef(to) };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/trash',
      access: { user: 'read' },
      summary: 'Structures in the trash, most recently deleted first, with when each will be purged',
      tag,
      query: trashQuery,
      responses: {
        200: { description: 'A page of trashed structures', schema: z.object({ items: z.array(trashItemSchema), nextCursor: z.string().nullable() }) },
      },
    },
    async ({ query, user }) => {
      const em = app.orm.em.fork();
      const after = decodeCursor(query.cursor, trashCursor);
      const rows = await listTrash(em, await visibleTo(em, user), query.project, {
        limit: query.limit,
        after: after && { deletedAt: new Date(after.after), id: after.id },
      });
      const page = rows.slice(0, query.limit);
      const retentionMs = app.config.trashRetentionDays * 24 * 3600 * 1000;
      const presented = await presentStructures(em, page);
      const last = page[page.length - 1];
      return {
        items: presented.map((s, i) => ({ ...s, purgeAt: new Date((page[i].deletedAt as Date).getTime() + retentionMs).toISOString() })),
        nextCursor: rows.length > query.limit && last?.deletedAt ? encodeCursor({ after: last.deletedAt.toISOString(), id: last.id }) : null,
      };
    },
  );

  return router;
}
