import { PassThrough } from 'node:stream';
import Router from '@koa/router';
import type { Job } from 'bullmq';
import { z } from 'zod';
import type { User } from '../../../entities/User.js';
import { jobNameFromId } from '../../../queue/contract.js';
import { convertJob, jobContractNamed } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import { ownsVersionOfBlob } from '../../../services/conversions/derivations.js';
import { notFound } from '../../errors.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';

const jobParams = z.object({ id: z.string().regex(/^[a-z]+-[0-9a-f-]{36}(-[A-Za-z0-9]+)?$/, 'is not a job id') });

export const jobSchema = z.object({
  id: z.string(),
  queue: z.string(),
  name: z.string(),
  state: z.string(),
  progress: z.unknown(),
  attempts: z.number(),
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
});

/** The job, if it exists and belongs to the user (admins see all). Another user's job is a 404. */
async function findJob(app: AppContext, id: string, user: User): Promise<Job | undefined> {
  const definition = jobContractNamed(jobNameFromId(id));
  if (!definition) return undefined;
  const job = await app.queues[definition.queue].getJob(id);
  if (!job) return undefined;
  if (user.role === 'admin' || (job.data as { ownerId?: string }).ownerId === user.id) return job;
  // A conversion is shared by everyone who stores its source: each of them may follow it.
  const source = (job.data as { sourceSha256?: string }).sourceSha256;
  if (job.name === convertJob.name && source && (await ownsVersionOfBlob(app.orm.em.fork(), user.id, source))) return job;
  return undefined;
}

async function presentJob(job: Job) {
  const rawState = await job.getState();
  const state = rawState === 'prioritized' || rawState === 'waiting-children' ? 'waiting' : rawState;
  return {
    id: job.id as string,
    queue: job.queueName,
    name: job.name,
    state,
    progress: job.progress,
    attempts: job.attemptsMade,
    ...(state === 'completed' ? { result: job.returnvalue } : {}),
    ...(state === 'failed' ? { error: { code: 'job_failed', message: job.failedReason } } : {}),
    createdAt: new Date(job.timestamp).toISOString(),
    ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
  };
}

export function jobRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/jobs/:id',
      summary: 'A job: state, progress, result or error',
      tag: 'Jobs',
      params: jobParams,
      responses: { 200: { description: 'The job', schema: jobSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user }) => {
      const job = await findJob(app, params.id, user);
      if (!job) throw notFound('job');
      return presentJob(job);
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/jobs/:id/events',
      summary: 'Server-sent events: progress and the final state of a job',
      tag: 'Jobs',
      params: jobParams,
      responses: { 200: { description: 'An event stream', contentType: 'text/event-stream' } },
    },
    async ({ params, user, koa }) => {
      const first = await findJob(app, params.id, user);
      if (!first) throw notFound('job');
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
