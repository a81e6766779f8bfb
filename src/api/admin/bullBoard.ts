import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Context, Middleware, Next } from 'koa';
import type { AppContext } from '../../runtime/context.js';
import { requireAdmin, requireUser } from '../middleware/auth.js';

export const BULL_BOARD_PATH = '/admin/queues';

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
    await user(ctx, () => admin(ctx, () => board(ctx, next)));
  };
}
