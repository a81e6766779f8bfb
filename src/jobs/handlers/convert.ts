import { UnrecoverableError } from 'bullmq';
import { notifyWorkChanged } from '../../db/notify.js';
import { EngineError } from '../../engines/process.js';
import { convertJob } from '../../queue/jobs.js';
import { ConversionImpossible, convertBlob } from '../../services/conversions/convert.js';
import { handleJob } from '../define.js';

/** Stored blob + target format → a derived blob (services/conversions/convert.ts). */
export const convertHandler = handleJob(convertJob, {
  async handle(input, ctx) {
    try {
      return await convertBlob(input, ctx);
    } catch (error) {
      // Conversions that fail for the file's sake would fail again: no retries.
      if (error instanceof EngineError || error instanceof ConversionImpossible) throw new UnrecoverableError(error.message);
      throw error;
    } finally {
      // Wakes API requests waiting on this conversion (Prefer: wait), whatever the outcome.
      await notifyWorkChanged(ctx.em, ctx.job.id as string).catch(() => {});
    }
  },
});
