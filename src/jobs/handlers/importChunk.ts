import { importChunkJob } from '../../queue/jobs.js';
import { reportProgress } from '../../services/imports/batches.js';
import { processImportChunk } from '../../services/imports/chunk.js';
import { failImportChunk } from '../../services/imports/finish.js';
import { handleJob } from '../define.js';

/** A child of the batch job: the plain files of one chunk of an import, through the upload stages together (services/imports/chunk.ts). */
export const importChunkHandler = handleJob(importChunkJob, {
  async handle(input, ctx) {
    await processImportChunk(ctx, input);
    await reportProgress(ctx, ctx.em.fork(), input.batchId);
    return { chunk: input.chunk };
  },
  async onFinalFailure({ batchId, chunk }, error, ctx) {
    await failImportChunk(ctx, batchId, chunk, error.message);
  },
});
