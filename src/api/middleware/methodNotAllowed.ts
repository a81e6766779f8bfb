import type { Context, Next } from 'koa';

/**
 * The router answers a known path asked with another method (405) or an unknown method (501) with a
 * bare status; this gives those answers the JSON error shape every other refusal has, keeping the
 * router's `Allow` header.
 */
export function methodAnswers() {
  return async (ctx: Context, next: Next) => {
    await next();
    if ((ctx.status !== 405 && ctx.status !== 501) || (ctx.body !== undefined && ctx.body !== null)) return;
    const allowed = ctx.response.get('Allow');
    const status = ctx.status;
    ctx.body =
      status === 405
        ? {
            error: {
              code: 'method_not_allowed',
              message: `${ctx.path} does not answer ${ctx.method}${allowed ? `; it answers ${allowed}` : ''}.`,
              details: { allowed: allowed ? allowed.split(/,\s*/) : [] },
            },
          }
        : { error: { code: 'not_implemented', message: `molvault does not answer the ${ctx.method} method.` } };
    ctx.status = status;
  };
}
