import { PassThrough } from 'node:stream';
import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../../../runtime/context.js';
import { access } from '../../access.js';
import { errorSchema } from '../../openapi.js';
import { presentJob } from '../../presenters/jobs.js';
import { route } from '../../route.js';
import { jobSchema } from '../../schemas/jobs.js';

const jobParams = z.object({ id: z.string().regex(/^[a-z]+-[0-9a-f-]{36}(-[A-Za-z0-9]+)?$/, 'is not a job id') });

export { jobSchema };

export function jobRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/jobs/:id',
      access: { on: 'job', need: 'read' },
      summary: 'A job: state, progress, result or error',
      tag: 'Jobs',
      params: jobParams,
      responses: { 200: { description: 'The job', schema: jobSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user }) => {
      return presentJob(await access(app.orm.em.fork(), user).job(app.queues, params.id));
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/jobs/:id/events',
      access: { on: 'job', need: 'read' },
      summary: 'Server-sent events: progress and the final state of a job',
      tag: 'Jobs',
      params: jobParams,
      responses: { 200: { description: 'An event stream', contentType: 'text/event-stream' } },
    },
    async ({ params, user, koa }) => {
      const first = await access(app.orm.em.fork(), user).job(app.queues, params.id);
      const stream = new PassThrough();
      koa.req.socket.setTimeout(0);
      koa.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      koa.status = 200;
      koa.body = stream;
      let closed = false;
      koa.req.on('close', () => {
        closed = true;
      });
      void (async () => {
        let last = '';
        const deadline = Date.now() + 30 * 60 * 1000;
        while (!closed && Date.now() < deadline) {
          const job = await app.queues[first.queueName as keyof typeof app.queues].getJob(params.id);
          if (!job) break;
          const presented = await presentJob(job);
          const text = JSON.stringify(presented);
          if (text !== last) {
            stream.write(`event: ${presented.state === 'completed' || presented.state === 'failed' ? presented.state : 'progress'}\ndata: ${text}\n\n`);
            last = text;
          }
          if (presented.state === 'completed' || presented.state === 'failed') break;
          await new Promise((r) => setTimeout(r, 250));
        }
        stream.end();
      })().catch((error) => {
        app.log.warn({ err: error }, 'job event stream ended with an error');
        stream.end();
      });
      return undefined;
    },
  );
  return router;
}
