import type { Context, Next } from 'koa';
import type { User } from '../../entities/User.js';
import type { AppContext } from '../../runtime/context.js';
import { ApiError } from '../errors.js';

const WINDOW_SECONDS = 60;
/** A slow or absent Redis must not stall the API: past this, the request goes through uncounted. */
const REDIS_TIMEOUT_MS = 250;

/** Fixed one-minute windows per user in Redis, shared by every API process. */
export function rateLimit(app: AppContext) {
  const limit = app.config.rateLimitPerMinute;
  return async (ctx: Context, next: Next) => {
    const user = ctx.state.user as User | undefined;
    if (limit === 0 || !user) return next();
    const window = Math.floor(Date.now() / 1000 / WINDOW_SECONDS);
    const key = `${app.config.queuePrefix}:ratelimit:${user.id}:${window}`;
    const count = await Promise.race([
      app.redis
        .multi()
        .incr(key)
        .expire(key, WINDOW_SECONDS + 1)
        .exec()
        .then((results) => Number(results?.[0]?.[1] ?? 0)),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), REDIS_TIMEOUT_MS).unref()),
    ]).catch((error) => {
      app.log.warn({ err: error }, 'rate limit check failed; letting the request through');
      return undefined;
    });
    if (count !== undefined) {
      const resetSeconds = (window + 1) * WINDOW_SECONDS - Math.floor(Date.now() / 1000);
      ctx.set('RateLimit-Limit', String(limit));
      ctx.set('RateLimit-Remaining', String(Math.max(0, limit - count)));
      ctx.set('RateLimit-Reset', String(resetSeconds));
      if (count > limit) {
        ctx.set('Retry-After', String(resetSeconds));
        throw new ApiError(429, 'rate_limited', `Too many requests: at most ${limit} a minute. Try again in ${resetSeconds} s.`, {
          limit,
          retryAfterSeconds: resetSeconds,
        });
      }
    }
    await next();
  };
}
