import type { Context, Next } from 'koa';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AppContext } from '../services/context.js';

export function createMetrics(app: AppContext) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'molvault_' });
  const requests = new Histogram({
    name: 'molvault_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const errors = new Counter({ name: 'molvault_http_errors_total', help: 'Responses with status >= 500', registers: [registry] });
  new Gauge({
    name: 'molvault_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const queue of Object.values(app.queues)) {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
      }
    },
  });
  const middleware = async (ctx: Context, next: Next) => {
    const end = requests.startTimer();
    try {
      await next();
    } finally {
      const routePath = (ctx as { _matchedRoute?: string })._matchedRoute ?? (ctx.path.startsWith('/admin/queues') ? '/admin/queues' : 'unmatched');
      end({ method: ctx.method, route: String(routePath), status: String(ctx.status) });
      if (ctx.status >= 500) errors.inc();
    }
  };
  return { registry, middleware };
}
