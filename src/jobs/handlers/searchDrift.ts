import { searchDriftJob } from '../../queue/jobs.js';
import { checkSearchDrift } from '../../services/search/maintenance.js';
import { handleJob } from '../define.js';

/** Scheduled on the index queue: finds where the search index and Postgres disagree and re-enqueues it. */
export const searchDriftHandler = handleJob(searchDriftJob, {
  async handle({ sample }, ctx) {
    return checkSearchDrift(ctx.em, ctx.search, ctx.queues, sample ?? ctx.config.searchDriftSample, ctx.log);
  },
});
