import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { recordAudit } from '../../../services/audit/audit.js';
import { SigningKeyRing } from '../../../services/sharing/keys.js';
import { signDownload, verifyDownload } from '../../../services/sharing/signedUrls.js';
import { findVersion, versionOrCurrent } from '../../../services/versions/lookup.js';
import { access } from '../../access.js';
import { readableOnBehalfOf } from '../../downloads/onBehalfOf.js';
import { sendSharedFile } from '../../downloads/sharedFile.js';
import { normalizedFormat, versionFile, versionFilename } from '../../downloads/versionFile.js';
import { ApiError, notFound } from '../../errors.js';
import { auditFrom } from '../../http/audit.js';
import { publicBaseUrl } from '../../http/publicUrl.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { expiresInSchema, refuseLongerThan } from '../../schemas/sharing.js';

const DEFAULT_TTL_MS = 3_600_000;

const issueQuery = z.object({
  version: z.coerce.number().int().min(1).optional(),
  format: z.string().max(20).optional(),
  expiresIn: expiresInSchema,
});

const signedParams = z.object({ token: z.string().min(1).max(300), filename: z.string().min(1).max(300) });

const invalid = () =>
  new ApiError(403, 'invalid_signature', 'This download URL is not valid: it was altered, or the key that signed it has been retired. Ask for a new one.');
const expired = (at: number) => new ApiError(410, 'expired', `This download URL expired at ${new Date(at * 1000).toISOString()}. Ask for a new one.`);
const gone = () =>
  new ApiError(410, 'gone', 'This download URL no longer works: the file was removed, or whoever made the URL can no longer read it. Ask for a new one.');

/**
 * Signed download URLs: `GET /v1/structures/:id/download-url` signs one for the caller, and
 * `GET|HEAD /s/<token>/<file name>` serves it to anyone holding it, with no header at all. The
 * token says what (structure, version, format), until when and on whose behalf; the signer's access
 * is checked again on every download, so losing access or a purge ends every URL at once.
 */
export function signedRoutes(app: AppContext): Router {
  const router = new Router();
  const keys = new SigningKeyRing(app.config.sharing.signingKeys);
  const tag = 'Sharing';

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/download-url',
      access: { on: 'structure', need: 'read' },
      summary: 'A signed URL that downloads a version (default: current) in a format without any header, for viewers and scripts',
      tag,
      params: idParams,
      query: issueQuery,
      responses: {
        200: {
          description: 'The URL (its path ends with the file name) and when it expires',
          schema: z.object({ url: z.string(), expiresAt: z.string(), version: z.number(), format: z.string() }),
        },
        400: { description: 'Unknown format, or a lifetime over SIGNED_URL_MAX_TTL', schema: errorSchema },
        404: { description: 'No such structure or version (or not yours)', schema: errorSchema },
        415: { description: 'No installed engine can produce that format', schema: errorSchema },
      },
    },
    async ({ params, query, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'read');
      const version = await versionOrCurrent(em, structure, query.version);
      if (!version) throw notFound('version');
      const max = app.config.sharing.signedUrlMaxTtlMs;
      const requested = query.expiresIn ?? DEFAULT_TTL_MS;
      // A signed URL always expires: "never" is refused as the longest lifetime of all.
      const ttl = requested === 'never' ? Number.POSITIVE_INFINITY : requested;
      refuseLongerThan(ttl, max, 'A signed URL', 'SIGNED_URL_MAX_TTL');
      const format = normalizedFormat(version, query.format);
      // Refuses impossible conversions now, and starts a possible one so it is ready when the URL is used.
      await versionFile(app, koa, em, structure.owner, version, format, 0);
      const expiresAt = Math.ceil((Date.now() + ttl) / 1000);
      const token = await signDownload(em, keys, { structureId: structure.id, version: version.number, format, expiresAt, signerId: user.id });
      const { actor, origin } = auditFrom(koa);
      await recordAudit(em, {
        action: 'signed_url.issue',
        actor,
        origin,
        targetType: 'structure',
        targetId: structure.id,
        projectId: structure.project,
        details: { version: version.number, format, expiresAt: new Date(expiresAt * 1000).toISOString() },
      });
      const base = publicBaseUrl(app, koa);
      return {
        url: `${base}/s/${token}/${encodeURIComponent(versionFilename(version, format))}`,
        expiresAt: new Date(expiresAt * 1000).toISOString(),
        version: version.number,
        format,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/s/:token/:filename',
      summary: 'Download through a signed URL (no header needed; HEAD, Range and If-None-Match work; any origin may read it)',
      tag,
      access: 'public',
      params: signedParams,
      responses: {
        200: { description: 'The file', contentType: 'application/octet-stream' },
        206: { description: 'The requested range', contentType: 'application/octet-stream' },
        304: { description: 'Not modified (If-None-Match)' },
        403: { description: 'The URL was altered or its key retired', schema: errorSchema },
        410: { description: 'The URL expired, or its signer lost access, or the structure was removed', schema: errorSchema },
        416: { description: 'Range not satisfiable', schema: errorSchema },
        503: { description: 'The conversion is still under way (Retry-After)', schema: errorSchema },
      },
    },
    async ({ params, koa }) => {
      const em = app.orm.em.fork();
      const check = await verifyDownload(em, keys, params.token);
      if (!check.ok) throw check.reason === 'expired' ? expired(check.expiresAt ?? 0) : invalid();
      const { download } = check;
      const structure = await readableOnBehalfOf(em, download.signerId, download.structureId);
      const version = structure && (await findVersion(em, structure.id, download.version));
      if (!structure || !version) throw gone();
      await sendSharedFile(app, em, koa, structure, version, download.format);
      return undefined;
    },
  );

  return router;
}
