import Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { z } from 'zod';
import type { ShareLink } from '../../../entities/ShareLink.js';
import type { Structure } from '../../../entities/Structure.js';
import type { StructureVersion } from '../../../entities/StructureVersion.js';
import type { MEDIA_TYPES } from '../../../formats/types.js';
import type { AppContext } from '../../../runtime/context.js';
import { createShareLink, findShareLink, linkState, listShareLinks, recordLinkEvent, revokeShareLink } from '../../../services/sharing/links.js';
import { countWrongPassword, passwordLockout } from '../../../services/sharing/passwordAttempts.js';
import { linkPasswordMatches } from '../../../services/sharing/passwords.js';
import { listVersions, versionOrCurrent } from '../../../services/versions/lookup.js';
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
import { lifetimeInWords, refuseLongerThan } from '../../schemas/sharing.js';
import { renderRefusalPage, renderSharePage, SHARE_PAGE_CSP } from './page.js';
import { createLinkBody, linkFileParams, linkIdParams, linkOpenQuery, linkSchema } from './schema.js';

const DEFAULT_TTL_MS = 7 * 86_400_000;
const VERSIONS_SHOWN = 100;

const unavailable = () =>
  new ApiError(410, 'link_unavailable', 'This share link does not exist or no longer works (it may have been revoked, or what it shared was removed).');

function presentLink(link: ShareLink, base: string) {
  return {
    id: link.id,
    url: `${base}/l/${link.id}`,
    structureId: link.structure,
    version: link.version ?? null,
    format: link.format,
    expiresAt: link.expiresAt?.toISOString() ?? null,
    createdAt: link.createdAt.toISOString(),
    createdBy: link.createdBy,
    revokedAt: link.revokedAt?.toISOString() ?? null,
    lastUsedAt: link.lastUsedAt?.toISOString() ?? null,
    password: !!link.passwordHash,
    state: linkState(link),
  };
}

/** The password of `Authorization: Basic …` (the user name is ignored). */
function basicPassword(header: string): string | undefined {
  const [scheme, value] = header.split(/\s+/, 2);
  if (!value || !/^basic$/i.test(scheme)) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : decoded;
}

/** Whether the client wants the page (a browser's navigation) rather than the file. */
function wantsPage(koa: Context, download: string | undefined): boolean {
  if (download === '1' || download === 'true') return false;
  return koa.accepts('application/octet-stream', 'text/html') === 'text/html';
}

/**
 * Share links. Owners of a project (the `own` permission) make, list and revoke them; anyone with
 * the URL opens `/l/<id>`: a browser gets a page with the structure in Mol* (served by molvault),
 * anything else (or `?download=1`) the file, as does `/l/<id>/<file name>`. A link works until it
 * expires or is revoked, and only while its maker may still read the structure. A password is
 * asked for with HTTP Basic; wrong ones are limited per link and IP.
 */
export function linkRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Sharing';
  const baseOf = (koa: Context) => publicBaseUrl(app, koa);

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/links',
      access: { on: 'structure', need: 'own' },
      summary: 'Create a share link to a structure (owners): a page with a 3D viewer and a download, optionally with a password',
      tag,
      params: idParams,
      body: createLinkBody,
      responses: {
        201: { description: 'The link (its id is the secret in the URL)', schema: linkSchema },
        400: { description: 'Unknown format or version, or a lifetime the server does not allow', schema: errorSchema },
        403: { description: 'Only owners of the project may share it', schema: errorSchema },
        404: { description: 'No such structure (or not yours)', schema: errorSchema },
        415: { description: 'No installed engine can produce that format', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'own');
      const version = await versionOrCurrent(em, structure, body.version);
      if (!version) throw body.version ? notFound('version') : new ApiError(409, 'no_version', 'This structure has no stored version to share yet.');
      const { shareLinkMaxTtlMs: max, shareLinkAllowNever } = app.config.sharing;
      const ttl = body.expiresIn ?? DEFAULT_TTL_MS;
      if (ttl === 'never' && !shareLinkAllowNever) {
        throw new ApiError(
          400,
          'never_not_allowed',
          `Links that never expire are turned off on this server (SHARE_LINK_ALLOW_NEVER); give an expiresIn of at most ${lifetimeInWords(max)}.`,
        );
      }
      if (ttl !== 'never') refuseLongerThan(ttl, max, 'A share link', 'SHARE_LINK_MAX_TTL');
      const format = normalizedFormat(version, body.format);
      // Refuses impossible conversions now, and starts a possible one so it is ready when the link is opened.
      await versionFile(app, koa, em, structure.owner, version, format, 0);
      const link = await createShareLink(
        em,
        {
          structure,
          createdBy: user.id,
          version: body.version ?? null,
          format,
          expiresAt: ttl === 'never' ? null : new Date(Date.now() + ttl),
          password: body.password,
        },
        auditFrom(koa),
      );
      koa.status = 201;
      koa.set('Location', `/l/${link.id}`);
      return presentLink(link, baseOf(koa));
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/links',
      access: { on: 'structure', need: 'own' },
      summary: "List a structure's share links (owners), newest first, revoked and expired ones included",
      tag,
      params: idParams,
      responses: { 200: { description: 'The links', schema: z.object({ items: z.array(linkSchema) }) } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'own', { trashed: true });
      const base = baseOf(koa);
      return { items: (await listShareLinks(em, structure.id)).map((link) => presentLink(link, base)) };
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/links/:id',
      // The link's structure is found, and its owner role checked, by the handler: the id is a link's.
      access: { user: 'write' },
      summary: 'Revoke a share link (owners of its project); it stops working at once',
      tag,
      params: linkIdParams,
      responses: { 204: { description: 'Revoked (or already revoked)' }, 404: { description: 'No such link (or not yours)', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const link = await findShareLink(em, params.id);
      if (!link) throw notFound('link');
      const structure = await access(em, user)
        .structure(link.structure, 'own', { trashed: true })
        .catch((error: unknown) => {
          throw error instanceof ApiError && error.status === 404 ? notFound('link') : error;
        });
      await revokeShareLink(em, link, structure.project, auditFrom(koa));
      koa.status = 204;
      return undefined;
    },
  );

  /**
   * The link, its structure and the version asked for, once the link is usable and (for a link
   * with a password) the right password came with the request.
   */
  async function openLink(
    em: EntityManager,
    koa: Context,
    id: string,
    wanted: number | undefined,
  ): Promise<{ link: ShareLink; structure: Structure; version: StructureVersion }> {
    const link = await findShareLink(em, id);
    if (!link || link.revokedAt) throw unavailable();
    if (link.expiresAt && link.expiresAt.getTime() <= Date.now()) {
      throw new ApiError(410, 'link_expired', `This share link expired on ${link.expiresAt.toISOString().replace('T', ' ').slice(0, 16)} UTC.`);
    }
    const structure = await readableOnBehalfOf(em, link.createdBy, link.structure);
    if (!structure) throw unavailable();
    if (link.passwordHash) await checkPassword(em, koa, link, structure);
    if (link.version && wanted && wanted !== link.version) {
      throw new ApiError(403, 'version_not_shared', `This link shares version ${link.version} only.`);
    }
    const version = await versionOrCurrent(em, structure, link.version ?? wanted);
    if (!version) throw wanted ? notFound('version') : unavailable();
    koa.state.linkId = link.id;
    return { link, structure, version };
  }

  async function checkPassword(em: EntityManager, koa: Context, link: ShareLink, structure: Structure): Promise<void> {
    const prefix = app.config.queuePrefix;
    const wait = await passwordLockout(app.redis, prefix, link.id, koa.ip);
    if (wait > 0) {
      koa.set('Retry-After', String(wait));
      throw new ApiError(429, 'too_many_attempts', `Too many wrong passwords for this link from your address; try again in ${Math.ceil(wait / 60)} minutes.`, {
        retryAfterSeconds: wait,
      });
    }
    const given = basicPassword(koa.get('authorization'));
    const challenge = () => koa.set('WWW-Authenticate', 'Basic realm="molvault share link", charset="UTF-8"');
    if (given === undefined) {
      challenge();
      throw new ApiError(401, 'password_required', 'This share link is protected by a password: send it with HTTP Basic (any user name).');
    }
    if (!(await linkPasswordMatches(given, link.passwordHash as string))) {
      await countWrongPassword(app.redis, prefix, link.id, koa.ip);
      await recordLinkEvent(em, link, 'link.password_refused', { projectId: structure.project, origin: auditFrom(koa).origin });
      challenge();
      throw new ApiError(401, 'wrong_password', 'That is not the password of this share link.');
    }
  }

  /** The file of a link: the version in the link's format, with Range, ETag and HEAD. */
  async function sendLinkFile(em: EntityManager, koa: Context, opened: { link: ShareLink; structure: Structure; version: StructureVersion }) {
    const { link, structure, version } = opened;
    if (await sendSharedFile(app, em, koa, structure, version, link.format)) {
      await recordLinkEvent(em, link, 'link.download', {
        projectId: structure.project,
        origin: auditFrom(koa).origin,
        details: { version: version.number, format: link.format },
      });
    }
  }

  const fileResponses = {
    200: { description: 'The file (or, for a browser, the page)', contentType: 'application/octet-stream' },
    206: { description: 'The requested range', contentType: 'application/octet-stream' },
    304: { description: 'Not modified (If-None-Match)' },
    401: { description: 'The link needs its password (HTTP Basic), or the password was wrong', schema: errorSchema },
    410: { description: 'The link expired, was revoked or no longer leads anywhere', schema: errorSchema },
    429: { description: 'Too many wrong passwords from this address (Retry-After)', schema: errorSchema },
    503: { description: 'The conversion is still under way (Retry-After)', schema: errorSchema },
  };

  route(
    router,
    app,
    {
      method: 'get',
      path: '/l/:id',
      summary: 'Open a share link: a browser gets a page with the structure in Mol*; ?download=1 or a non-HTML Accept gets the file',
      tag,
      access: 'public',
      params: linkIdParams,
      query: linkOpenQuery,
      responses: { ...fileResponses, 200: { description: 'The page (text/html) or the file', contentType: 'text/html' } },
    },
    async ({ params, query, koa }) => {
      const em = app.orm.em.fork();
      const page = wantsPage(koa, query.download);
      try {
        const opened = await openLink(em, koa, params.id, query.version);
        if (!page) return await sendLinkFile(em, koa, opened);
        const { link, structure, version } = opened;
        const versions = link.version ? [version] : await listVersions(em, structure.id, { limit: VERSIONS_SHOWN - 1 });
        const format = (link.format === 'original' ? version.format : link.format) as keyof typeof MEDIA_TYPES;
        koa.set('Content-Security-Policy', SHARE_PAGE_CSP);
        koa.set('Referrer-Policy', 'no-referrer');
        koa.set('X-Content-Type-Options', 'nosniff');
        koa.set('Cache-Control', 'private, no-store');
        koa.type = 'text/html; charset=utf-8';
        koa.body = renderSharePage({
          linkId: link.id,
          structure,
          version,
          versions: versions.slice(0, VERSIONS_SHOWN),
          format,
          filename: versionFilename(version, link.format),
          expiresAt: link.expiresAt ?? null,
          pinned: !!link.version,
        });
        if (koa.method === 'GET') {
          await recordLinkEvent(em, link, 'link.use', { projectId: structure.project, origin: auditFrom(koa).origin, details: { version: version.number } });
        }
        return undefined;
      } catch (error) {
        if (!page || !(error instanceof ApiError)) throw error;
        koa.status = error.status;
        koa.type = 'text/html; charset=utf-8';
        koa.set('Referrer-Policy', 'no-referrer');
        koa.body = renderRefusalPage(error.status, error.message);
        return undefined;
      }
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/l/:id/:filename',
      summary: "A share link's file under its name (what viewers load); ?version=N for a link that follows the current version",
      tag,
      access: 'public',
      params: linkFileParams,
      query: linkOpenQuery,
      responses: fileResponses,
    },
    async ({ params, query, koa }) => {
      const em = app.orm.em.fork();
      await sendLinkFile(em, koa, await openLink(em, koa, params.id, query.version));
      return undefined;
    },
  );

  return router;
}
