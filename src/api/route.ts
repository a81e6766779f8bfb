import type Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';
import type { User } from '../entities/User.js';
import type { AppContext } from '../runtime/context.js';
import { access, requireAdministrator, requireWriteScope } from './access.js';
import { ApiError } from './errors.js';
import { requestJson } from './middleware/jsonBody.js';
import { type RouteAccess, type RouteSpec, registerRouteDoc } from './openapi.js';
import { assertSafeJson } from './text.js';

export interface RequestContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  user: User;
  app: AppContext;
  koa: Context;
}

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  // Every text a request carries, whatever its schema says of it: no NUL, no absurd nesting.
  assertSafeJson(value, `The request ${where}`);
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
    const message = `The request ${where} is not valid: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}.`;
    throw new ApiError(400, 'invalid_request', message, { issues });
  }
  return result.data;
}

/**
 * The route's declared access, checked before its query and body are read, so that whoever may not
 * call it learns nothing from validation either. Handlers still find what they act on through
 * access(); this makes the declaration true for every route, and the matrix test trust it.
 */
async function enforceAccess(app: AppContext, rule: RouteAccess, user: User, params: { id?: string } | undefined): Promise<void> {
  if (rule === 'public') return;
  if (rule === 'admin') return requireAdministrator(user);
  if ('user' in rule) {
    if (rule.user === 'write') requireWriteScope(user);
    return;
  }
  // Rows found by their handlers (exports, teams): a change still needs a token that may write.
  if (rule.need !== 'read' && rule.on !== 'project' && rule.on !== 'structure') requireWriteScope(user);
  if ((rule.on === 'project' || rule.on === 'structure') && params?.id) {
    const em = app.orm.em.fork();
    if (rule.on === 'project') await access(em, user).project(params.id, rule.need);
    else await access(em, user).structure(params.id, rule.need, { trashed: true });
  }
}

/**
 * Declares a route once: its zod schemas validate the request and feed the OpenAPI document.
 * The handler returns the JSON body (status 200 unless it sets koa.status), or sets koa.body itself.
 */
export function route<S extends RouteSpec>(
  router: Router,
  app: AppContext,
  spec: S,
  handler: (request: RequestContext<Infer<S['params']>, Infer<S['query']>, Infer<S['body']>>) => Promise<unknown>,
) {
  registerRouteDoc(spec);
  router[spec.method](spec.path, async (koa) => {
    const params = spec.params ? parseOrThrow(spec.params, koa.params, 'path') : undefined;
    await enforceAccess(app, spec.access, koa.state.user as User, params as { id?: string } | undefined);
    const query = spec.query ? parseOrThrow(spec.query, koa.query, 'query string') : undefined;
    const body = spec.body ? parseOrThrow(spec.body, requestJson(koa) ?? {}, 'body') : undefined;
    const result = await handler({
      params: params as never,
      query: query as never,
      body: body as never,
      user: koa.state.user as User,
      app,
      koa,
    });
    if (result !== undefined) koa.body = result;
  });
}
