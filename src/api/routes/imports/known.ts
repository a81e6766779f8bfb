import Router from '@koa/router';
import { z } from 'zod';
import { sqlArray } from '../../../db/arrays.js';
import type { AppContext } from '../../../runtime/context.js';
import { idParams } from '../../common.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { findOwnProject } from '../projects/index.js';

/** One call answers for this many files; a client with more asks in several calls. */
export const MAX_KNOWN_QUERY = 5000;

const sha256List = z
  .array(
    z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be a sha256 in hex (64 characters)')
      .transform((hash) => hash.toLowerCase()),
  )
  .max(MAX_KNOWN_QUERY, `at most ${MAX_KNOWN_QUERY} checksums per request; ask in several requests`);

export const knownFilesBody = z.object({ sha256: sha256List });
export const knownFilesResponse = z.object({ known: z.array(z.string()) });

/**
 * Which of these checksums the project already stores, so a re-run import (the CLI's resume)
 * uploads only what is missing. A checksum is known when it is the sha256 of the raw bytes of an
 * upload stored into a live structure of this project (a `.gz` as sent), or of the content of a
 * live structure's current version (an uncompressed file: the same bytes). Structures in the
 * trash do not count: importing the file again makes it live again as a new structure.
 */
export function knownFilesRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/imports/known',
      summary: 'Which of these file checksums (sha256 of the bytes as they would be sent) the project already stores; for resuming an import',
      tag: 'Imports',
      params: idParams,
      body: knownFilesBody,
      responses: {
        200: { description: 'The subset of the given checksums the project stores, each once', schema: knownFilesResponse },
        400: { description: 'Not a list of sha256 checksums, or more than 5000', schema: errorSchema },
        404: { description: 'No such project of yours', schema: errorSchema },
      },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const project = await findOwnProject(em, user.id, params.id);
      const asked = [...new Set(body.sha256)];
      if (asked.length === 0) return { known: [] };
      const list = sqlArray(asked);
      const rows = await em.execute<{ sha256: string }[]>(
        `select u.received_sha256 as sha256
           from uploads u join structures s on s.id = u.structure_id
          where u.project_id = ? and u.state = 'stored' and s.project_id = ? and s.deleted_at is null
            and u.received_sha256 = any(?::text[])
         union
         select v.blob_sha256 as sha256
           from structures s join structure_versions v on v.id = s.current_version_id
          where s.project_id = ? and s.deleted_at is null
            and v.blob_sha256 = any(?::text[])`,
        [project.id, project.id, list, project.id, list],
      );
      return { known: rows.map((row) => row.sha256) };
    },
  );
  return router;
}
