import type Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import type { User } from '../../../entities/User.js';
import { enqueue } from '../../../queue/enqueue.js';
import { exportJob, exportJobId } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import { estimateExportBytes } from '../../../services/exports/content.js';
import { BEST_CASE_COMPRESSION, exportFilename, exportQuotaFailure, quotaLeft } from '../../../services/exports/exports.js';
import { findExport, recordExport } from '../../../services/exports/requests.js';
import { findProjectName } from '../../../services/projects/projects.js';
import { access } from '../../access.js';
import { ApiError } from '../../errors.js';
import { preferredWait, waitFor } from '../../http/prefer.js';
import { errorSchema } from '../../openapi.js';
import { presentExport } from '../../presenters/exports.js';
import { route } from '../../route.js';
import { acceptedExportSchema, createExportBody } from './schema.js';

/** What the export covers: a project the caller may see, or structures they may see (live, deduplicated). */
async function resolveScope(em: EntityManager, user: User, body: { projectId?: string; structureIds?: string[] }) {
  if ((body.projectId === undefined) === (body.structureIds === undefined)) {
    throw new ApiError(
      400,
      'export_scope',
      'Say what to export with exactly one of "projectId" (a whole project) or "structureIds" (a selection of structures), not both and not neither.',
    );
  }
  if (body.projectId) {
    const project = await access(em, user).project(body.projectId, 'write');
    return { project: project.id as string, selection: null, projectName: project.name as string };
  }
  const ids = [...new Set(body.structureIds as string[])];
  const rows = await access(em, user).structures(ids, 'write');
  const trashed = rows.filter((r) => r.deletedAt !== null).map((r) => r.id);
  if (trashed.length > 0) {
    throw new ApiError(
      409,
      'structure_in_trash',
      `${trashed.length === 1 ? 'Structure' : 'Structures'} ${trashed.slice(0, 10).join(', ')} ${trashed.length === 1 ? 'is' : 'are'} in the trash; restore ${trashed.length === 1 ? 'it' : 'them'} (POST /v1/structures/:id/restore) or leave ${trashed.length === 1 ? 'it' : 'them'} out of the export.`,
      { trashed },
    );
  }
  const projects = [...new Set(rows.map((r) => r.projectId))];
  const projectName = projects.length === 1 ? await findProjectName(em, projects[0]) : undefined;
  return { project: null, selection: ids, projectName: projectName ?? null };
}

export function createExportRoute(router: Router, app: AppContext) {
  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/exports',
      access: { user: 'write' },
      summary: 'Export a project or a selection of structures as a .zip or .tar.gz with manifest.json (Prefer: wait=N to wait for it)',
      tag: 'Exports',
      body: createExportBody,
      responses: {
        202: { description: 'Accepted: poll the export (Location header) or follow the job', schema: acceptedExportSchema },
        200: { description: 'Finished (with Prefer: wait=N and the export done in time): {"export": ...}' },
        400: { description: 'Not exactly one of projectId / structureIds, or an unknown format, version choice or archive kind', schema: errorSchema },
        404: { description: 'No such project or structure of yours (details.missing lists structure ids)', schema: errorSchema },
        409: { description: 'A selected structure is in the trash (details.trashed)', schema: errorSchema },
        507: { description: 'The archive cannot fit in your quota: details.quotaBytes, usedBytes, reservedBytes, requestedBytes', schema: errorSchema },
      },
    },
    async ({ body, user, koa }) => {
      const em = app.orm.em.fork();
      const scope = await resolveScope(em, user, body);
      const estimate = await estimateExportBytes(em, { owner: user.id, project: scope.project, selection: scope.selection, versions: body.versions });
      const leastBytes = Math.ceil(estimate.bytes / BEST_CASE_COMPRESSION);
      if (leastBytes > 0) {
        const figures = await quotaLeft(em, user.id);
        if (leastBytes > figures.leftBytes) {
          const failure = exportQuotaFailure(figures, leastBytes, true);
          throw new ApiError(failure.status, failure.code, failure.message, failure.details);
        }
      }
      const now = new Date();
      const row = await recordExport(em, {
        owner: user.id,
        project: scope.project,
        selection: scope.selection,
        format: body.format,
        versions: body.versions,
        archive: body.archive,
        filename: exportFilename(scope.projectName, body.archive, now),
        // Provisional; set again from the moment the archive is finished.
        expiresAt: new Date(now.getTime() + app.config.exportRetentionMs),
      });
      try {
        await enqueue(app.queues, exportJob, { exportId: row.id, ownerId: user.id });
      } catch (error) {
        // Accepted all the same: Postgres holds the export and reconcile enqueues it once Redis is back.
        app.log.error({ err: error, exportId: row.id }, 'could not enqueue the export; it stays pending');
      }
      await answerExport(app, koa, row.id);
      return undefined;
    },
  );
}

/** 202 with where to poll; or, with `Prefer: wait=N` and the export finished in time, 200 with it (or its failure). */
async function answerExport(app: AppContext, koa: Context, exportId: string) {
  const waitSeconds = preferredWait(koa);
  if (waitSeconds > 0) {
    const done = await waitFor(
      waitSeconds,
      async () => {
        const row = await findExport(app.orm.em.fork(), exportId);
        return row && row.state !== 'pending' && row.state !== 'running' ? row : undefined;
      },
      (ms) => app.workEvents.wait(exportId, ms),
    );
    if (done) {
      if (done.state === 'failed' && done.error) {
        const status = (done.error as { status?: number }).status ?? 500;
        throw new ApiError(status, done.error.code, done.error.message, { ...(done.error.details ?? {}), exportId });
      }
      koa.status = 200;
      koa.set('Location', `/v1/exports/${exportId}`);
      koa.body = { export: presentExport(done) };
      return;
    }
  }
  const state = waitSeconds > 0 ? ((await findExport(app.orm.em.fork(), exportId))?.state ?? 'pending') : 'pending';
  koa.status = 202;
  koa.set('Location', `/v1/exports/${exportId}`);
  koa.body = { export: { id: exportId, state, jobId: exportJobId(exportId) } };
}
