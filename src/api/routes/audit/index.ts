import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { AUDIT_ACTIONS } from '../../../services/audit/audit.js';
import { type AuditFilter, listAuditEvents } from '../../../services/audit/list.js';
import { access } from '../../access.js';
import { decodeCursor, encodeCursor } from '../../http/cursor.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';

const instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time such as 2026-01-31T00:00:00Z' }).transform((v) => new Date(v));
const auditQuery = z.object({
  action: z.enum(AUDIT_ACTIONS).optional(),
  actor: z.uuid({ error: 'must be a user id (UUID)' }).optional(),
  target: z.string().max(200).optional(),
  since: instant.optional(),
  until: instant.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});
const adminAuditQuery = auditQuery.extend({ project: z.uuid({ error: 'must be a project id (UUID)' }).optional() });
const cursorSchema = z.object({ createdAt: z.string(), id: z.uuid() });

const auditEventSchema = z.object({
  id: z.uuid(),
  createdAt: z.string(),
  action: z.string(),
  actor: z.object({ userId: z.uuid().nullable(), tokenId: z.uuid().nullable(), linkId: z.string().nullable() }),
  target: z.object({ type: z.string(), id: z.string().nullable() }),
  projectId: z.uuid().nullable(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
const pageSchema = z.object({ items: z.array(auditEventSchema), nextCursor: z.string().nullable() });

/** The audit log, read only: nothing in the API changes or deletes an entry. */
export function auditRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Audit';

  const page = async (filter: AuditFilter, query: z.infer<typeof auditQuery>) => {
    const before = decodeCursor(query.cursor, cursorSchema);
    const rows = await listAuditEvents(app.orm.em.fork(), filter, { limit: query.limit, before });
    const items = rows.slice(0, query.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > query.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
  };
  const filterOf = (query: z.infer<typeof auditQuery>): AuditFilter => ({
    action: query.action,
    actorUserId: query.actor,
    targetId: query.target,
    since: query.since,
    until: query.until,
  });

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/projects/:id/audit',
      access: { on: 'project', need: 'own' },
      summary: "The project's audit log, newest first (owners), filtered by action, actor, target and time, paged by cursor",
      tag,
      params: idParams,
      query: auditQuery,
      responses: { 200: { description: 'A page of events', schema: pageSchema } },
    },
    async ({ params, query, user }) => {
      const project = await access(app.orm.em.fork(), user).project(params.id, 'own');
      return page({ ...filterOf(query), projectId: project.id }, query);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/admin/audit',
      access: 'admin',
      summary: 'The whole audit log, newest first (administrators), filtered by project, action, actor, target and time, paged by cursor',
      tag,
      query: adminAuditQuery,
      responses: { 200: { description: 'A page of events', schema: pageSchema } },
    },
    async ({ query }) => page({ ...filterOf(query), projectId: query.project }, query),
  );

  return router;
}
