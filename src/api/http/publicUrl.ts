import type { Context } from 'koa';
import type { AppContext } from '../../runtime/context.js';

/** Where clients reach this server: PUBLIC_URL when set (behind a proxy), else the request's own scheme and host. */
export function publicBaseUrl(app: AppContext, koa: Context): string {
  return (app.config.publicUrl || `${koa.protocol}://${koa.host}`).replace(/\/+$/, '');
}
