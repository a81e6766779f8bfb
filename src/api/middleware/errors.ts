import type { Context, Next } from 'koa';
import type { Logger } from '../../lib/logger.js';
import { ApiError } from '../errors.js';

/** Every error leaves as {"error": {code, message, details}} with its status; unknown ones as 500 without internals. */
export function errorHandler(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new ApiError(404, 'not_found', `There is no endpoint ${ctx.method} ${ctx.path}.`);
      }
    } catch (error) {
      if (error instanceof ApiError) {
        ctx.status = error.status;
        ctx.body = { error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } };
        if (error.status === 401 && ctx.path.startsWith('/admin')) ctx.set('WWW-Authenticate', 'Basic realm="molvault admin"');
        return;
      }
      const status = (error as { status?: number; expose?: boolean }).status;
      if (status && status >= 400 && status < 500 && (error as { expose?: boolean }).expose) {
        ctx.status = status;
        ctx.body = { error: { code: 'bad_request', message: (error as Error).message } };
        return;
      }
      log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.body = { error: { code: 'internal_error', message: 'molvault hit an unexpected error; it has been logged. Please try again.' } };
    }
  };
}
