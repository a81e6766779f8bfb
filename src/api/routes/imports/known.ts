import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { knownChecksums, refusedChecksums } from '../../../services/imports/known.js';
import { access } from '../../access.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';

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
export const knownFilesResponse = z.object({
  known: z.array(z.string()),
  /** Contents the project refused before (the file's own fault), with the latest reason: a re-run import need not send them. */
  refused: z.array(z.object({ sha256: z.string(), code: z.string().nullable(), message: z.string().nullable() })),
});

/** Which of these checksums the project already stores, so a re-run import (the CLI's resume) uploads only what is missing (see knownChecksums). */
export function knownFilesRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/projects/:id/imports/known',
      access: { on: 'project', need: 'read' },
      summary: 'Which of these file checksums (sha256 of the bytes as they would be sent) the project already stores; for resuming an import',
      tag: 'Imports',
      params: idParams,
      body: knownFilesBody,
      responses: {
        200: {
          description: 'The subset of the given checksums the project stores, each once, and those it refused before (with the reason)',
          schema: knownFilesResponse,
        },
        400: { description: 'Not a list of sha256 checksums, or more than 5000', schema: errorSchema },
        404: { description: 'No such project of yours', schema: errorSchema },
      },
    },
    async ({ params, body, user }) => {
      const em = app.orm.em.fork();
      const project = await access(em, user).project(params.id, 'read');
      const asked = [...new Set(body.sha256)];
      const known = await knownChecksums(em, project.id, asked);
      const stored = new Set(known);
      const refused = (await refusedChecksums(em, project.id, asked)).filter((r) => !stored.has(r.sha256));
      return { known, refused };
    },
  );
  return router;
}
