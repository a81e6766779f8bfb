import { z } from 'zod';

/** What a route does with what it finds (see Permission in access.ts). */
export type AccessNeed = 'read' | 'write' | 'own';

/**
 * Who may call a route, declared with it, checked by route() before the request is read, and
 * published as `x-molvault-access` (test/authz.matrix.test.ts derives every expected status from it):
 *  - `public`: anyone, no token;
 *  - `admin`: administrators, with a token that has no scopes;
 *  - `{ user }`: any signed-in user, about their own account (a read-only token only for `read`);
 *  - `{ on: 'project' | 'structure', need }`: the project or structure in the `:id` path
 *    parameter, with the project role `need` takes (404 to whoever has no role, 403 to a role too low);
 *  - `{ on: 'upload' | 'import' | 'export' | 'job', need }`: a row the caller may see through its
 *    project (or that is their own: exports), found by the handler;
 *  - `{ on: 'team', need }`: a team the caller is in (`own`: its maintainers) or any team for an administrator.
 */
export type RouteAccess =
  | 'public'
  | 'admin'
  | { user: 'read' | 'write' }
  | { on: 'project' | 'structure' | 'upload' | 'import' | 'export' | 'job' | 'team'; need: AccessNeed };

export interface RouteSpec {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Koa-style path, e.g. /v1/projects/:id */
  path: string;
  summary: string;
  tag: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Documented request body that is not JSON (multipart uploads, raw bytes). */
  rawBody?: { contentType: string; description: string; fields?: Record<string, string> };
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  /** Required: who may call it (see RouteAccess). */
  access: RouteAccess;
}

const routes: RouteSpec[] = [];

/** Every declared route (the authorization matrix walks them). */
export function declaredRoutes(): readonly RouteSpec[] {
  return routes;
}

export function registerRouteDoc(spec: RouteSpec) {
  if (!routes.some((r) => r.method === spec.method && r.path === spec.path)) routes.push(spec);
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output') {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'openapi-3.0' });
}

/** The OpenAPI 3 document, built from the same zod schemas that validate the requests. */
export function openApiDocument(serverUrl?: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [location, schema] of [
      ['path', route.params],
      ['query', route.query],
    ] as const) {
      if (!schema) continue;
      const js = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: location, required: location === 'path' || (js.required ?? []).includes(name), schema: property });
      }
    }
    const operation: Record<string, unknown> = {
      summary: route.summary,
      tags: [route.tag],
      parameters,
      security: route.access === 'public' ? [] : [{ bearer: [] }],
      'x-molvault-access': route.access,
      responses: Object.fromEntries(
        Object.entries(route.responses).map(([status, response]) => [
          status,
          {
            description: response.description,
            ...(response.schema
              ? { content: { [response.contentType ?? 'application/json']: { schema: jsonSchema(response.schema, 'output') } } }
              : response.contentType
                ? { content: { [response.contentType]: { schema: { type: 'string', format: 'binary' } } } }
                : {}),
          },
        ]),
      ),
    };
    if (route.body) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } };
    } else if (route.rawBody) {
      operation.requestBody = {
        required: true,
        description: route.rawBody.description,
        content: {
          [route.rawBody.contentType]: {
            schema: {
              type: 'object',
              properties: Object.fromEntries(
                Object.entries(route.rawBody.fields ?? {}).map(([name, description]) => [
                  name,
                  name === 'file' ? { type: 'string', format: 'binary', description } : { type: 'string', description },
                ]),
              ),
              required: ['file'],
            },
          },
        },
      };
    }
    paths[path] ??= {};
    paths[path][route.method] = operation;
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'molvault API',
      version: '1',
      description: 'Storage for molecular structures and visualization sessions. Errors are {"error": {"code", "message", "details"}}.',
    },
    servers: serverUrl ? [{ url: serverUrl }] : [],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token starting with mv_' } } },
    paths,
  };
}

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
});
