import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { z } from 'zod';
import { parseByteSize } from '../../../config/index.js';
import { USER_ROLES } from '../../../entities/User.js';
import { enqueue } from '../../../queue/enqueue.js';
import { usageJob } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import { forgetCachedAuth } from '../../../services/auth/auth.js';
import { changeUser, findUser, listUsers } from '../../../services/auth/users.js';
import { requireAdministrator } from '../../access.js';
import { notFound } from '../../errors.js';
import { auditRequest } from '../../http/audit.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { preferredWait, waitForJobEnd } from '../../http/prefer.js';
import { errorSchema } from '../../openapi.js';
import { presentJob } from '../../presenters/jobs.js';
import { presentUsersForAdmin } from '../../presenters/users.js';
import { route } from '../../route.js';
import { idParams, listQuery } from '../../schemas/common.js';
import { jobSchema } from '../../schemas/jobs.js';

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
      access: 'admin',
      summary: 'List users with their quota and stored usage (administrators)',
      tag,
      query: listQuery,
      responses: {
        200: { description: 'A page of users', schema: z.object({ items: z.array(adminUserSchema), nextCursor: z.string().nullable() }) },
        403: { description: 'Not an administrator', schema: errorSchema },
      },
    },
    async ({ query, user }) => {
      requireAdministrator(user);
      const after = decodeCursor(query.cursor, cursorSchema);
      const rows = await listUsers(app.orm.em.fork(), { limit: query.limit, afterEmail: after?.email });
      const page = rows.slice(0, query.limit);
      const last = page[page.length - 1];
      return {
        items: await presentUsersForAdmin(app.orm.em.fork(), page),
        nextCursor: rows.length > query.limit && last ? encodeCursor({ email: last.email }) : null,
      };
    },
  );

  route(
    router,
    app,
    {
      method: 'patch',
      path: '/v1/admin/users/:id',
      access: 'admin',
      summary: 'Change a user\'s quota (bytes, or a size like "20GB"), role or disabled flag (administrators)',
      tag,
      params: idParams,
      body: updateUserBody,
      responses: {
        200: { description: 'The user', schema: adminUserSchema },
        403: { description: 'Not an administrator', schema: errorSchema },
        404: { description: 'No such user', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      requireAdministrator(user);
      const em = app.orm.em.fork();
      const target = await findUser(em, params.id);
      if (!target) throw notFound('user');
      const before = { quotaBytes: target.quotaBytes, role: target.role, disabled: target.disabled };
      await em.transactional(async (tx) => {
        await changeUser(tx, target, body);
        const { quotaBytes, ...rest } = body;
        if (quotaBytes !== undefined && quotaBytes !== before.quotaBytes) {
          await auditRequest(tx, koa, {
            action: 'admin.quota.update',
            targetType: 'user',
            targetId: target.id,
            details: { from: before.quotaBytes, to: quotaBytes },
          });
        }
        const changed = Object.entries(rest).filter(([key, value]) => value !== undefined && before[key as keyof typeof before] !== value);
        if (changed.length > 0) {
          await auditRequest(tx, koa, {
            action: 'admin.user.update',
            targetType: 'user',
            targetId: target.id,
            details: Object.fromEntries(changed.map(([key, value]) => [key, { from: before[key as keyof typeof before], to: value }])),
          });
        }
      });
      forgetCachedAuth(); // a disabled user or a changed role takes effect at once
      app.log.info({ admin: user.id, user: target.id, change: body }, 'admin changed a user');
      return (await presentUsersForAdmin(em, [target]))[0];
    },
  );
  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/admin/usage/recompute',
      access: 'admin',
      summary: "Recompute every user's usage now (the nightly usage job, on demand; administrators)",
      tag,
      responses: {
        200: { description: 'With Prefer: wait=N, the job once it ended in time', schema: z.object({ job: jobSchema }) },
        202: { description: 'Enqueued: poll the job (Location header)', schema: z.object({ job: z.object({ id: z.string() }) }) },
        403: { description: 'Not an administrator', schema: errorSchema },
      },
    },
    async ({ user, koa }) => {
      requireAdministrator(user);
      const jobId = await enqueue(app.queues, usageJob, { stamp: randomUUID() }); // job ids are <name>-<uuid>
      koa.set('Location', `/v1/jobs/${jobId}`);
      const ended = await waitForJobEnd(app.queues[usageJob.queue], jobId, preferredWait(koa));
      if (ended) return { job: await presentJob(ended) };
      koa.status = 202;
      return { job: { id: jobId } };
    },
  );
  return router;
}
