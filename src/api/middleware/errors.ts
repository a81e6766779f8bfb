import type { Context, Next } from 'koa';
import { type InfrastructureCause, infrastructureCause } from '../../lib/infrastructure.js';
import type { Logger } from '../../lib/logger.js';
import { StorageFullError, StoreUnavailableError } from '../../storage/blobStore.js';
import { ApiError } from '../errors.js';

/** How long a client is asked to wait before it tries again while a part of the system is away. */
export const RETRY_AFTER_SECONDS = 5;

const LATER = 'Nothing you sent before was lost; please try again in a few seconds.';
/** The sentence a 503 carries, by what is away. */
const UNAVAILABLE: Record<InfrastructureCause, string> = {
  postgres: `molvault's database is unreachable right now, so this request was not carried out. ${LATER}`,
  redis: `molvault's job queue (Redis) is unreachable right now, so this request was not carried out. ${LATER}`,
  storage: `molvault's file store is unreachable right now, so this request was not carried out. ${LATER}`,
  disk: `molvault's disk is full or unwritable right now, so this request was not carried out. ${LATER}`,
  engine: `A conversion engine stopped unexpectedly, so this request was not carried out. ${LATER}`,
  worker: `A molvault worker stopped unexpectedly, so this request was not carried out. ${LATER}`,
};

/** Every error leaves as {"error": {code, message, details}} with its status; a sick system (Postgres or Redis away, a full disk) as 503 with Retry-After; unknown ones as 500 without internals. */
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
      if (error instanceof StorageFullError || error instanceof StoreUnavailableError) {
        // The object store is full or out of reach: the request is refused as a whole, with nothing kept.
        log.warn({ err: error, method: ctx.method, path: ctx.path }, 'storage refused the request');
        ctx.status = error.status;
        ctx.body = { error: { code: error.code, message: error.message } };
        return;
      }
      const status = (error as { status?: number; expose?: boolean }).status;
      if (status && status >= 400 && status < 500 && (error as { expose?: boolean }).expose) {
        ctx.status = status;
        ctx.body = { error: { code: 'bad_request', message: (error as Error).message } };
        return;
      }
      const cause = infrastructureCause(error);
      if (cause) {
        // Not the request's fault, and not forever: say "not now" and when to ask again.
        log.warn({ err: error, infrastructure: cause, method: ctx.method, path: ctx.path }, 'request refused: infrastructure unavailable');
        ctx.status = 503;
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        ctx.body = { error: { code: 'service_unavailable', message: UNAVAILABLE[cause], details: { unavailable: cause } } };
        return;
      }
      log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.body = { error: { code: 'internal_error', message: 'molvault hit an unexpected error; it has been logged. Please try again.' } };
    }
  };
}
