import { indexJob } from '../../queue/jobs.js';
import { indexStructures } from '../../services/search/indexing.js';
import { markIndexed } from '../../services/upload/uploads.js';
import { handleJob } from '../define.js';

/** Structures → their search documents (services/search/indexing.ts); the uploads that made them end there. */
export const indexHandler = handleJob(indexJob, {
  async handle({ structureId, uploadId, structureIds, uploadIds }, ctx) {
    const result = await indexStructures(ctx, structureIds ?? [structureId]);
    // Either way (indexed or deleted) the uploads' indexing is done.
    await markIndexed(ctx.em, uploadIds ?? (uploadId ? [uploadId] : []));
    if (structureIds) return result;
    return result.indexed > 0 ? { indexed: true } : { deleted: true };
  },
});
