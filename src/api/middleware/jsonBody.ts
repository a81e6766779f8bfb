import type { Context, Next } from 'koa';
import { ApiError } from '../errors.js';
import { parseClientJson } from '../text.js';

const BODY_ERROR = Symbol('jsonBodyError');

type WithBody = { body?: unknown; [BODY_ERROR]?: ApiError };

/**
 * Reads a JSON body (up to 1 MiB) into ctx.request.body. Uploads are streamed elsewhere. A body that
 * cannot be taken (too large, not JSON, too deep, a NUL in a string) is not answered here: the
 * refusal is kept for whoever reads the body (`requestJson`), so a route that expects a file can
 * say that a file was expected instead.
 */
export function jsonBody(limitBytes = 1024 * 1024) {
  return async (ctx: Context, next: Next) => {
    if (['POST', 'PUT', 'PATCH'].includes(ctx.method) && ctx.is('application/json')) {
      const request = ctx.request as WithBody;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of ctx.req) {
        size += (chunk as Buffer).length;
        if (size > limitBytes) {
          request[BODY_ERROR] = new ApiError(413, 'body_too_large', `JSON bodies may be at most ${limitBytes} bytes.`);
          ctx.req.resume();
          ctx.set('Connection', 'close');
          break;
        }
        chunks.push(chunk as Buffer);
      }
      if (!request[BODY_ERROR]) {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          request.body = text ? parseClientJson(text, 'The request body') : {};
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          request[BODY_ERROR] = error;
        }
      }
    }
    await next();
  };
}

/** The JSON body of the request, or the refusal it earned when it was read. */
export function requestJson(ctx: Context): unknown {
  const request = ctx.request as WithBody;
  if (request[BODY_ERROR]) throw request[BODY_ERROR];
  return request.body;
}

/** Whether the request sent a JSON body (read or refused). */
export const sentJson = (ctx: Context) => ['POST', 'PUT', 'PATCH'].includes(ctx.method) && !!ctx.is('application/json');
