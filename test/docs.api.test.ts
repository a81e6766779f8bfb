import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.js';
import { openApiDocument } from '../src/api/openapi.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/lib/logger.js';
import type { AppContext } from '../src/runtime/context.js';

/**
 * docs/API.md is the HTTP contract: every (method, path) of the OpenAPI document must have its
 * section there, and every section must name a route that exists. A route section is a heading
 * `### METHOD /path`, with path parameters written as in OpenAPI (`/v1/projects/{id}`).
 */
const API_MD = path.join(import.meta.dirname, '..', 'docs', 'API.md');
const ROUTE_HEADING = /^### (GET|POST|PUT|PATCH|DELETE) (\/\S*)$/;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const key = (method: string, routePath: string) => `${method.toUpperCase()} ${routePath}`;

/** The routes docs/API.md documents, in order (duplicates kept, so they can be reported). */
function documentedRoutes(markdown: string): string[] {
  return markdown.split('\n').flatMap((line) => {
    const match = ROUTE_HEADING.exec(line.trimEnd());
    return match ? [key(match[1], match[2])] : [];
  });
}

function openApiRoutes(document: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(document.paths).flatMap(([routePath, operations]) =>
    Object.keys(operations)
      .filter((method) => METHODS.includes(method))
      .map((method) => key(method, routePath)),
  );
}

describe('docs/API.md', () => {
  let dataDir: string;
  let server: http.Server;
  let url: string;
  let openApi: string[];
  let documented: string[];

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-docs-'));
    // The routes (and so the OpenAPI document) are declared when the app is built, which touches only
    // the configuration, the logger and the queue list; requests that reach Postgres or Redis are never made.
    const config = { ...loadConfig({ DATA_DIR: dataDir }), databaseUrl: 'postgres://unused', redisUrl: 'redis://unused' };
    const stub = { config, log: createLogger('silent'), queues: {} } as unknown as AppContext;
    const koa = createApp(stub);
    openApi = openApiRoutes(openApiDocument());
    documented = documentedRoutes(await fs.readFile(API_MD, 'utf8'));
    server = http.createServer(koa.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('the OpenAPI document is not empty (the app declared its routes)', () => {
    expect(openApi.length).toBeGreaterThan(50);
    expect(openApi).toContain('GET /v1/projects/{id}');
  });

  it('documents every route of the OpenAPI document', () => {
    const missing = openApi.filter((route) => !documented.includes(route));
    expect(missing, `routes without a "### METHOD /path" section in docs/API.md`).toEqual([]);
  });

  it('documents each route once', () => {
    const twice = documented.filter((route, i) => documented.indexOf(route) !== i);
    expect(twice).toEqual([]);
  });

  it('documents no route that does not exist', async () => {
    // Routes outside the OpenAPI document (/docs, Bull Board) must answer something other than the
    // router's "no such endpoint" (404) or "not that method" (405/501). Without a token, a /v1 route
    // that exists answers 401 before touching any service; these ones need none.
    const extra = documented.filter((route) => !openApi.includes(route));
    expect(extra.length, 'a few routes outside the OpenAPI document are documented too').toBeGreaterThan(0);
    const absent: string[] = [];
    for (const route of extra) {
      const [method, routePath] = route.split(' ');
      const response = await fetch(`${url}${routePath.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000')}`, {
        method,
        redirect: 'manual',
      });
      await response.arrayBuffer();
      if ([404, 405, 501].includes(response.status)) absent.push(`${route} (answered ${response.status})`);
    }
    expect(absent, 'sections in docs/API.md for routes the server does not have').toEqual([]);
  });
});
