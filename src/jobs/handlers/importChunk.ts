import { importChunkJob } from '../../queue/jobs.js';
import { reportProgress } from '../../services/imports/batches.js';
import { IMPORT_CHUNK_SIZE, processImportChunk } from '../../services/imports/chunk.js';
import { handleJob } from '../define.js';
import { failItem } from './importItem.js';

/** A child of the batch job: the plain files at positions [chunk × 25, chunk × 25 + 25) of an import, through the upload stages together. */
export const importChunkHandler = handleJob(importChunkJob, {
  async handle(input, ctx) {
    await processImportChunk(ctx, input);
    await reportProgress(ctx, ctx.em.fork(), input.batchId);
    return { chunk: input.chunk };
  },
  async onFinalFailure({ batchId, chunk }, error, ctx) {
    const open = await ctx.em.execute<{ id: string }[]>(
      `select id from import_items where batch_id = ? and position >= ? and position < ? and restore is null and state in ('pending', 'processing')`,
      [batchId, chunk * IMPORT_CHUNK_SIZE, (chunk + 1) * IMPORT_CHUNK_SIZE],
    );
    for (const { id } of open) await failItem(ctx, batchId, id, error.message);
  },
});
