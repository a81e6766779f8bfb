import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Context, Middleware, Next } from 'koa';
import type { AppContext } from '../../runtime/context.js';
import { requireAdmin, requireUser } from '../middleware/auth.js';

export const BULL_BOARD_PATH = '/admin/queues';
/** The console's own files (scripts, styles, images, labels), as the @bull-board/ui package ships them: nothing private. */
const STATIC_PATH = `${BULL_BOARD_PATH}/static/`;

/**
 * Bull Board at /admin/queues, for administrators only: HTTP Basic with an admin token as the
 * password (what a browser prompts for), or the Bearer header.
 */
export function bullBoard(app: AppContext): Middleware {
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: Object.values(app.queues).map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'molvault queues' } },
  });
  const board = serverAdapter.registerPlugin() as unknown as Middleware;
  const user = requireUser(app);
  const admin = requireAdmin();
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== BULL_BOARD_PATH && !ctx.path.startsWith(`${BULL_BOARD_PATH}/`)) return next();
    if (ctx.path.startsWith(STATIC_PATH) && (ctx.method === 'GET' || ctx.method === 'HEAD')) return board(ctx, next);
    await user(ctx, () => admin(ctx, () => board(ctx, next)));
    if (ctx.response.is('html') && typeof ctx.body === 'string') ctx.body = offlinePage(ctx.body);
  };
}

/**
 * The console's page as molvault serves it, for machines without internet and browsers given the
 * token in the address (http://admin:TOKEN@host/admin/queues, the easy way to answer Basic):
 *  - no stylesheet from another host: the page asks fonts.googleapis.com for IBM Plex, which no
 *    installed package carries; its stylesheet falls back to the system's sans-serif and monospace;
 *  - fetch() given a relative URL resolves it against location.href. The page loads its labels
 *    (static/locales/…) with fetch(), and a relative URL resolved the browser's way inherits the
 *    user and password of the address, which fetch refuses: the page then showed translation keys
 *    (MENU.QUEUES) instead of labels. location.href never holds them. The labels need no password
 *    (STATIC_PATH).
 */
export function offlinePage(html: string): string {
  return html
    .replace(/<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi, '')
    .replace(
      /(<base\b[^>]*>)/i,
      `$1\n    <script>(function (fetch) { window.fetch = function (input, init) { return fetch(typeof input === 'string' ? new URL(input, location.href).href : input, init); }; })(window.fetch);</script>`,
    );
}
