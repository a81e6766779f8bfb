import { z } from 'zod';
import { checkSearchDrift } from '../../services/search/maintenance.js';
import { defineJob } from '../define.js';

/** Scheduled on the index queue: finds where the search index and Postgres disagree and re-enqueues it. */
export const searchDriftJob = defineJob({
  name: 'searchDrift',
  queue: 'index',
  data: z.object({ sample: z.number().int().min(0).optional() }),
  jobId: () => `searchDrift-${Date.now()}`,
  async handle({ sample }, ctx) {
    return checkSearchDrift(ctx.em, ctx.search, ctx.queues, sample ?? ctx.config.searchDriftSample, ctx.log);
  },
});
