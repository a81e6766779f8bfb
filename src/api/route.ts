import type Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';
import type { User } from '../entities/User.js';
import type { AppContext } from '../runtime/context.js';
import { ApiError } from './errors.js';
import { requestJson } from './middleware/jsonBody.js';
import { type RouteSpec, registerRouteDoc } from './openapi.js';
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
