import Router from '@koa/router';
import { z } from 'zod';
import { parseDuration } from '../../../config/index.js';
import type { AppContext } from '../../../runtime/context.js';
import { createToken } from '../../../services/auth/auth.js';
import { TOKEN_SCOPES } from '../../../services/auth/grant.js';
import { listTokens, revokeToken, type TokenView, tokenView } from '../../../services/auth/tokens.js';
import { access, requireWriteScope } from '../../access.js';
import { ApiError, notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { errorSchema } from '../../openapi.js';
import { grantOf } from '../../principal.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';

const tokenSchema = z.object({
  id: z.uuid(),
  name: z.string().nullable(),
  prefix: z.string(),
  scopes: z.array(z.enum(TOKEN_SCOPES)).nullable(),
  projectIds: z.array(z.uuid()).nullable(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  createdAt: z.string(),
});

const expiresIn = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value * 1000 : parseDuration(value);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (seconds, or text such as "30d" or "12h")` });
    return z.NEVER;
  }
  return ms;
});

const createTokenBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    scopes: z
      .array(z.enum(TOKEN_SCOPES))
      .min(1)
      .refine((s) => s.includes('read'), { message: 'every token may read: give ["read"] or ["read","write"]' }),
    projectIds: z.array(z.uuid()).min(1).max(100).optional(),
    expiresIn: expiresIn.optional(),
  })
  .strict();

const present = (t: TokenView) => ({
  ...t,
  expiresAt: t.expiresAt?.toISOString() ?? null,
  lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
  revokedAt: t.revokedAt?.toISOString() ?? null,
  createdAt: t.createdAt.toISOString(),
});

/** API tokens of the caller: scoped (read, or read and write) and optionally limited to projects. */
export function tokenRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Tokens';

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/tokens',
      access: { user: 'write' },
      summary: 'Create a token with scopes (read, or read and write), optionally limited to projects and expiring; the token is shown once',
      tag,
      body: createTokenBody,
      responses: {
        201: { description: 'The token (its secret in `token`, shown this once)', schema: tokenSchema.extend({ token: z.string() }) },
        403: { description: 'More than the token making it may do', schema: errorSchema },
        404: { description: 'A project you cannot see', schema: errorSchema },
      },
    },
    async ({ body, user, koa }) => {
      requireWriteScope(user);
      const em = app.orm.em.fork();
      const grant = grantOf(user);
      // A token never makes one that may do more than itself.
      if (grant?.scopes && !body.scopes.every((s) => grant.scopes?.includes(s))) {
        throw new ApiError(403, 'forbidden', `This token has the scopes ${grant.scopes.join(', ')}; it cannot make a token with more.`);
      }
      const projectIds = body.projectIds ? [...new Set(body.projectIds)] : grant?.projectIds ? [...grant.projectIds] : null;
      if (projectIds) {
        const caller = access(em, user);
        for (const id of projectIds) await caller.project(id, 'read');
      }
      const expiresAt = body.expiresIn ? new Date(Date.now() + body.expiresIn) : null;
      const created = await em.transactional(async (tx) => {
        const made = await createToken(tx, user.id, { name: body.name, scopes: body.scopes, projectIds, expiresAt: expiresAt ?? undefined });
        await auditRequest(tx, koa, {
          action: 'token.create',
          targetType: 'token',
          targetId: made.id,
          details: { name: body.name, scopes: body.scopes, projectIds, expiresAt: expiresAt?.toISOString() ?? null },
        });
        return made;
      });
      koa.status = 201;
      return { ...present(tokenView(created.row)), token: created.token };
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/tokens',
      access: { user: 'read' },
      summary: 'Your tokens (never their secrets)',
      tag,
      responses: { 200: { description: 'Tokens, newest first', schema: z.object({ items: z.array(tokenSchema) }) } },
    },
    async ({ user }) => ({ items: (await listTokens(app.orm.em.fork(), user.id)).map(present) }),
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/tokens/:id',
      access: { user: 'write' },
      summary: 'Revoke one of your tokens (at once)',
      tag,
      params: idParams,
      responses: { 204: { description: 'Revoked' }, 404: { description: 'No such live token of yours', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const revoked = await em.transactional(async (tx) => {
        const done = await revokeToken(tx, user.id, params.id);
        if (done) await auditRequest(tx, koa, { action: 'token.revoke', targetType: 'token', targetId: params.id });
        return done;
      });
      if (!revoked) throw notFound('token');
      koa.status = 204;
      return undefined;
    },
  );

  return router;
}
