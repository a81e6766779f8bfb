import type { Context, Next } from 'koa';
import type { User } from '../../entities/User.js';
import type { AppContext } from '../../runtime/context.js';
import { authenticate } from '../../services/auth/auth.js';
import { requireAdministrator } from '../access.js';
import { ApiError } from '../errors.js';
import { actingUser } from '../principal.js';

/** The token from `Authorization: Bearer …`, or from HTTP Basic's password (browsers, Bull Board). */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(/\s+/, 2);
  if (!value) return undefined;
  if (/^bearer$/i.test(scheme)) return value.trim();
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : decoded;
  }
  return undefined;
}

export function requireUser(app: AppContext) {
  return async (ctx: Context, next: Next) => {
    const token = tokenFromHeader(ctx.get('authorization'));
    if (!token) throw new ApiError(401, 'unauthenticated', 'This request needs an API token: send "Authorization: Bearer mv_…".');
    const found = await authenticate(() => app.orm.em.fork(), token);
    if (!found) throw new ApiError(401, 'invalid_token', 'The API token is unknown, expired or revoked, or its user is disabled.');
    ctx.state.user = actingUser(found.user, found.grant);
    ctx.state.tokenId = found.grant.tokenId;
    await next();
  };
}

export function requireAdmin() {
  return async (ctx: Context, next: Next) => {
    requireAdministrator(ctx.state.user as User | undefined);
    await next();
  };
}
