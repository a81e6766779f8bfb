import cors from '@koa/cors';
import type { Context, Next } from 'koa';

/** Paths that carry their own authorization (signed URLs, share links, the viewer they load): any origin may read them. */
const OPEN_PATHS = /^\/(s|l|viewer)\//;

/** Response headers a web app may read; X-Molvault-* headers a response carries are added to these. */
const EXPOSED = [
  'ETag',
  'Content-Length',
  'Content-Range',
  'Content-Disposition',
  'Accept-Ranges',
  'Location',
  'Retry-After',
  'Preference-Applied',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
];

/**
 * CORS: web apps on the `CORS_ORIGINS` allowlist may call /v1 with a bearer token (preflights are
 * answered; no cookies are involved, so no credentials mode); signed URLs and share links answer
 * every origin with `*`. Any other origin gets no CORS header, which the browser refuses.
 */
export function corsPolicy(allowedOrigins: string[]) {
  const allowed = new Set(allowedOrigins);
  const handler = cors({
    origin: (ctx: Context) => {
      if (OPEN_PATHS.test(ctx.path)) return '*';
      const origin = ctx.get('origin');
      return origin && allowed.has(origin) && (ctx.path === '/v1' || ctx.path.startsWith('/v1/')) ? origin : '';
    },
    exposeHeaders: EXPOSED,
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'Range', 'If-None-Match', 'If-Range', 'Prefer'],
    maxAge: 600,
  });
  return async (ctx: Context, next: Next) =>
    handler(ctx, async () => {
      await next();
      exposeMolvaultHeaders(ctx);
    });
}

function exposeMolvaultHeaders(ctx: Context): void {
  const exposed = ctx.response.get('Access-Control-Expose-Headers');
  if (!exposed) return;
  const extra = Object.keys(ctx.response.headers).filter((name) => name.toLowerCase().startsWith('x-molvault-'));
  if (extra.length > 0) ctx.set('Access-Control-Expose-Headers', `${exposed},${extra.join(',')}`);
}
