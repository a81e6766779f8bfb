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
        // "Not now" rather than "never": a refusal that passes by itself says when to try again.
        if (typeof error.details?.retryAfterSeconds === 'number') ctx.set('Retry-After', String(error.details.retryAfterSeconds));
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

/** Reads a JSON body (up to 1 MiB) into ctx.request.body. Uploads are streamed elsewhere. */
export function jsonBody(limitBytes = 1024 * 1024) {
  return async (ctx: Context, next: Next) => {
    if (['POST', 'PUT', 'PATCH'].includes(ctx.method) && ctx.is('application/json')) {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of ctx.req) {
        size += (chunk as Buffer).length;
        if (size > limitBytes) throw new ApiError(413, 'body_too_large', `JSON bodies may be at most ${limitBytes} bytes.`);
        chunks.push(chunk as Buffer);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        (ctx.request as { body?: unknown }).body = text ? JSON.parse(text) : {};
      } catch (error) {
        throw new ApiError(400, 'invalid_json', `The request body is not valid JSON: ${(error as Error).message}`);
      }
    }
    await next();
  };
}
