import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { z } from 'zod';
import { parseByteSize } from '../../../config/index.js';
import { sqlArray } from '../../../db/arrays.js';
import { USER_ROLES, User } from '../../../entities/User.js';
import { enqueue } from '../../../queue/enqueue.js';
import { usageJob } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import { forgetCachedAuth, serializeUser } from '../../../services/auth/auth.js';
import { decodeCursor, encodeCursor, idParams, listQuery } from '../../common.js';
import { ApiError, notFound } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';

const adminUserSchema = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string().nullable(),
  role: z.enum(USER_ROLES),
  quotaBytes: z.number(),
  disabled: z.boolean(),
  createdAt: z.string(),
  usedBytes: z.number(),
  usageComputedAt: z.string().nullable(),
});

const quotaValue = z.union([z.number().int().min(0), z.string()]).transform((value, ctx) => {
  const bytes = typeof value === 'number' ? value : parseByteSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (try 10737418240 or "10GB")` });
    return z.NEVER;
  }
  return bytes;
});

const updateUserBody = z.object({ quotaBytes: quotaValue.optional(), role: z.enum(USER_ROLES).optional(), disabled: z.boolean().optional() }).strict();

const cursorSchema = z.object({ email: z.string() });

function requireAdmin(user: User) {
  if (user.role !== 'admin') throw new ApiError(403, 'forbidden', 'Only administrators may use this endpoint.');
}

async function present(app: AppContext, users: User[]) {
  const ids = users.map((u) => u.id);
  const rows = ids.length
    ? await app.orm.em
        .fork()
        .execute<{ user_id: string; used_bytes: string; computed_at: Date }[]>(
          'select user_id, used_bytes, computed_at from user_usage where user_id = any(?::uuid[])',
          [sqlArray(ids)],
        )
    : [];
  const usage = new Map(rows.map((r) => [r.user_id, r]));
  return users.map((u) => {
    const row = usage.get(u.id);
    return { ...serializeUser(u), usedBytes: Number(row?.used_bytes ?? 0), usageComputedAt: row ? new Date(row.computed_at).toISOString() : null };
  });
}

/** Administrators: list users with their usage, change quotas, roles, and disable accounts. */
export function adminUserRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Admin';

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/admin/users',
      summary: 'List users with their quota and stored usage (administrators)',
      tag,
      auth: 'admin',
      query: listQuery,
      responses: {
        200: { description: 'A page of users', schema: z.object({ items: z.array(adminUserSchema), nextCursor: z.string().nullable() }) },
        403: { description: 'Not an administrator', schema: errorSchema },
      },
    },
    async ({ query, user }) => {
      requireAdmin(user);
      const after = decodeCursor(query.cursor, cursorSchema);
      const rows = await app.orm.em.fork().find(User, after ? { email: { $gt: after.email } } : {}, { orderBy: { email: 'asc' }, limit: query.limit + 1 });
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      return { items: await present(app, page), nextCursor: rows.length > query.limit && last ? encodeCursor({ email: last.email }) : null };
    },
  );

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/admin/users/:id',
      summary: 'Change a user\'s quota (bytes, or a size like "20GB"), role or disabled flag (administrators)',
      tag,
      auth: 'admin',
      params: idParams,
      body: updateUserBody,
      responses: {
        200: { description: 'The user', schema: adminUserSchema },
        403: { description: 'Not an administrator', schema: errorSchema },
        404: { description: 'No such user', schema: errorSchema },
      },
    },
    async ({ params, body, user }) => {
      requireAdmin(user);
      const em = app.orm.em.fork();
      const target = await em.findOne(User, { id: params.id });
      if (!target) throw notFound('user');
      if (body.quotaBytes !== undefined) target.quotaBytes = body.quotaBytes;
      if (body.role !== undefined) target.role = body.role;
      if (body.disabled !== undefined) target.disabled = body.disabled;
      await em.flush();
      forgetCachedAuth(); // a disabled user or a changed role takes effect at once
      app.log.info({ admin: user.id, user: target.id, change: body }, 'admin changed a user');
      return (await present(app, [target]))[0];
    },
  );
  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/admin/usage/recompute',
      summary: "Recompute every user's usage now (the nightly usage job, on demand; administrators)",
      tag,
      auth: 'admin',
      responses: {
        202: { description: 'Enqueued: poll the job (Location header)', schema: z.object({ job: z.object({ id: z.string() }) }) },
        403: { description: 'Not an administrator', schema: errorSchema },
      },
    },
    async ({ user, koa }) => {
      requireAdmin(user);
      const jobId = await enqueue(app.queues, usageJob, { stamp: randomUUID() }); // job ids are <name>-<uuid>
      koa.status = 202;
      koa.set('Location', `/v1/jobs/${jobId}`);
      return { job: { id: jobId } };
    },
  );
  return router;
}
