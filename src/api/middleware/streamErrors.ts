import type { Context } from 'koa';
import type { Logger } from '../../lib/logger.js';

/** Codes of a client that went away mid-answer (closed the tab, cancelled curl, timed out): nothing went wrong here. */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED']);

export function clientWentAway(error: { code?: string } | undefined, ctx?: Context): boolean {
  return !!error && (CLIENT_GONE.has(error.code ?? '') || !!ctx?.req.destroyed);
}

/**
 * Errors Koa reports outside the middleware (mostly a response stream that fails once the answer
 * has started): a client that went away is a debug line; anything else is an error, in the JSON log.
 */
export function logStreamError(log: Logger, error: Error & { code?: string; status?: number; expose?: boolean }, ctx?: Context): void {
  const where = ctx ? { method: ctx.method, path: ctx.path } : {};
  if (clientWentAway(error, ctx)) {
    log.debug({ ...where, code: error.code }, 'client went away before the answer was sent');
    return;
  }
  if (error.expose || (error.status && error.status < 500)) return;
  log.error({ err: error, ...where }, 'answer failed after it started');
}
