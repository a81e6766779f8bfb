import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Context } from 'koa';

/**
 * The API reference page at /docs: Swagger UI from the swagger-ui-dist package, served by molvault
 * itself from node_modules, so the page renders on a machine without internet (it used to load
 * Redoc from a CDN and stayed blank).
 */

export const DOCS_ASSETS_PATH = '/docs/assets';

const SWAGGER_UI_DIR = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The package files the page uses, by the name it asks for them under DOCS_ASSETS_PATH: nothing else of node_modules is reachable. */
const ASSETS: Record<string, { file: string; type: string }> = {
  'swagger-ui.css': { file: 'swagger-ui.css', type: 'text/css; charset=utf-8' },
  'swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'text/javascript; charset=utf-8' },
  'favicon-32x32.png': { file: 'favicon-32x32.png', type: 'image/png' },
  'favicon-16x16.png': { file: 'favicon-16x16.png', type: 'image/png' },
};

/**
 * Starts Swagger UI on the OpenAPI document. A file rather than an inline script, so a Content
 * Security Policy without 'unsafe-inline' allows it. No validator: Swagger UI would otherwise ask
 * validator.swagger.io to check the document.
 */
const INIT_SCRIPT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/docs/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>molvault API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${DOCS_ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="${DOCS_ASSETS_PATH}/favicon-32x32.png" sizes="32x32">
</head>
<body><div id="swagger-ui"></div>
<noscript>The API description is at <a href="/docs/openapi.json">/docs/openapi.json</a>.</noscript>
<script src="${DOCS_ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="${DOCS_ASSETS_PATH}/molvault-docs.js"></script>
</body></html>`;

/** Answers GET /docs/assets/:name: one of the listed package files, or the page's start script; 404 for anything else. */
export function serveDocsAsset(ctx: Context, name: string): boolean {
  if (name === 'molvault-docs.js') {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.body = INIT_SCRIPT;
    return true;
  }
  const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!asset) return false;
  ctx.type = asset.type;
  // The installed package changes only with molvault's dependencies: a day's caching saves the 1.5 MB bundle.
  ctx.set('Cache-Control', 'public, max-age=86400');
  ctx.body = createReadStream(path.join(SWAGGER_UI_DIR, asset.file));
  return true;
}
