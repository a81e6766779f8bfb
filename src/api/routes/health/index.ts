import fs from 'node:fs/promises';
import Router from '@koa/router';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import type { StorageMonitor } from '../../../services/maintenance/storageMonitor.js';
import { ApiError } from '../../errors.js';
import { openApiDocument, registerRouteDoc } from '../../openapi.js';
import { DOCS_ASSETS_PATH, DOCS_HTML, serveDocsAsset } from './docsPage.js';

async function check(name: string, probe: () => Promise<unknown>) {
  const started = Date.now();
  try {
    await Promise.race([probe(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 2 s')), 2000))]);
    return { name, ok: true, ms: Date.now() - started };
  } catch (error) {
    return { name, ok: false, ms: Date.now() - started, error: (error as Error).message };
  }
}

/** Unauthenticated operational endpoints: liveness, readiness, metrics, API docs. */
const checkSchema = z.object({ name: z.string(), ok: z.boolean(), ms: z.number(), error: z.string().optional(), details: z.unknown().optional() });

export function healthRoutes(app: AppContext, metrics: Registry, storage: StorageMonitor): Router {
  const router = new Router();
  const tag = 'Operations';
  registerRouteDoc({ method: 'get', path: '/healthz', summary: 'Alive', tag, access: 'public', responses: { 200: { description: 'The process answers' } } });
  registerRouteDoc({
    method: 'get',
    path: '/readyz',
    summary: 'Ready: Postgres, Redis and the blob store reachable',
    tag,
    access: 'public',
    responses: {
      200: {
        description: 'Ready (warnings, such as low disk space, do not make it unready)',
        schema: z.object({ ok: z.boolean(), checks: z.array(checkSchema), warnings: z.array(z.string()) }),
      },
      503: {
        description: 'Not ready: `unavailable` names what cannot be reached (postgres, redis, blobStore) and `message` says so in a sentence',
        schema: z.object({
          ok: z.boolean(),
          checks: z.array(checkSchema),
          warnings: z.array(z.string()),
          unavailable: z.array(z.string()),
          message: z.string(),
        }),
      },
    },
  });
  registerRouteDoc({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tag,
    access: 'public',
    responses: { 200: { description: 'Text exposition format', contentType: 'text/plain' } },
  });
  router.get('/healthz', (ctx) => {
    ctx.body = { ok: true };
  });
  router.get('/readyz', async (ctx) => {
    const checks: z.infer<typeof checkSchema>[] = await Promise.all([
      // The one statement a route runs itself: a probe of the connection, no domain query.
      check('postgres', () => app.orm.em.fork().execute('select 1')),
      check('redis', () => app.redis.ping()),
      check('blobStore', async () => {
        if (app.blobs.kind === 's3') {
          // The bucket answers (a head of a name no blob has).
          await app.blobs.head('0'.repeat(64));
          return;
        }
        await fs.mkdir(app.config.blobDir, { recursive: true });
        await fs.access(app.config.blobDir, fs.constants.W_OK);
      }),
    ]);
    const warnings: string[] = [];
    const started = Date.now();
    try {
      const disk = await storage.disk();
      if (disk.warning) warnings.push(disk.warning);
      checks.push({ name: 'disk', ok: true, ms: Date.now() - started, details: disk });
    } catch (error) {
      warnings.push(`The free space under DATA_DIR could not be read: ${(error as Error).message}`);
    }
    const ok = checks.every((c) => c.ok);
    ctx.status = ok ? 200 : 503;
    const unavailable = checks.filter((c) => !c.ok).map((c) => c.name);
    if (!ok) ctx.set('Retry-After', '5');
    ctx.body = {
      ok,
      checks,
      warnings,
      ...(ok
        ? {}
        : {
            unavailable,
            message: `Not ready: ${unavailable.join(' and ')} ${unavailable.length > 1 ? 'are' : 'is'} unreachable; work already accepted waits and resumes once ${unavailable.length > 1 ? 'they are' : 'it is'} back.`,
          }),
    };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.contentType;
    ctx.body = await metrics.metrics();
  });
  router.get('/docs/openapi.json', (ctx) => {
    ctx.body = openApiDocument(app.config.publicUrl);
  });
  router.get('/docs', (ctx) => {
    ctx.type = 'html';
    ctx.body = DOCS_HTML;
  });
  registerRouteDoc({
    method: 'get',
    path: `${DOCS_ASSETS_PATH}/:name`,
    summary: 'A file of the API reference page (Swagger UI, served from the installed swagger-ui-dist)',
    tag,
    access: 'public',
    params: z.object({ name: z.string() }),
    responses: { 200: { description: 'The file', contentType: 'text/javascript' }, 404: { description: 'Not a file of the page' } },
  });
  router.get(`${DOCS_ASSETS_PATH}/:name`, (ctx) => {
    if (!serveDocsAsset(ctx, ctx.params.name)) throw new ApiError(404, 'not_found', 'The API reference page has no such file.');
  });
  return router;
}
