import { UnrecoverableError } from 'bullmq';
import { diffJob } from '../../queue/jobs.js';
import { computeDiff, DiffImpossible } from '../../services/versions/diffs.js';
import { handleJob } from '../define.js';

/** Two stored blobs → their structural diff, cached in version_diffs (services/versions/diffs.ts). */
export const diffHandler = handleJob(diffJob, {
  async handle(input, ctx) {
    try {
      return await computeDiff(ctx, input);
    } catch (error) {
      if (error instanceof DiffImpossible) throw new UnrecoverableError(error.message);
      throw error;
    }
  },
});
