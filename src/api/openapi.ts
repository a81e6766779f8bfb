import { z } from 'zod';

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
  auth?: 'token' | 'admin' | 'none';
}

const routes: RouteSpec[] = [];

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
      security: route.auth === 'none' ? [] : [{ bearer: [] }],
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
