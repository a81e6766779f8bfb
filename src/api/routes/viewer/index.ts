import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import Router from '@koa/router';
import type { AppContext } from '../../../runtime/context.js';
import { SHARE_SCRIPT } from './shareScript.js';

/** Mol*'s viewer build, from the installed `molstar` package: nothing is fetched from a CDN. */
const MOLSTAR_FILES: Record<string, string> = { 'molstar.js': 'application/javascript; charset=utf-8', 'molstar.css': 'text/css; charset=utf-8' };

function molstarBuildDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('molstar/build/viewer/molstar.js'));
}

/**
 * What the share-link page loads: Mol*'s viewer (`/viewer/molstar.js`, `/viewer/molstar.css`) and
 * the page's own script (`/viewer/share.js`). Public, cacheable, readable from any origin.
 */
export function viewerRoutes(_app: AppContext): Router {
  const router = new Router();
  let buildDir: string | undefined;

  router.get('/viewer/share.js', (koa) => {
    koa.type = 'application/javascript; charset=utf-8';
    koa.set('Cache-Control', 'public, max-age=3600');
    koa.body = SHARE_SCRIPT;
  });

  router.get('/viewer/:file', async (koa, next) => {
    const type = MOLSTAR_FILES[koa.params.file];
    if (!type) return next();
    buildDir ??= molstarBuildDir();
    const file = path.join(buildDir, koa.params.file);
    const info = await stat(file);
    const etag = `"molstar-${info.size}-${Math.floor(info.mtimeMs)}"`;
    koa.set('ETag', etag);
    koa.set('Cache-Control', 'public, max-age=86400');
    koa.set('X-Content-Type-Options', 'nosniff');
    if (koa.get('if-none-match') === etag) {
      koa.status = 304;
      return;
    }
    koa.type = type;
    koa.length = info.size;
    koa.body = createReadStream(file);
  });

  return router;
}
