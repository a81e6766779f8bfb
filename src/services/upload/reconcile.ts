import { sqlArray } from '../../db/arrays.js';
import { Upload } from '../../entities/Upload.js';
import { ingestJob, snapshotJob, validateJob } from '../../queue/jobs.js';
import type { Reconciler } from '../maintenance/reconciler.js';
import type { UploadStage } from './refusals.js';
import { nextUploadJob } from './stages.js';
import { failUploadStage } from './uploads.js';

const UPLOAD_STAGES: { stage: UploadStage; contract: unknown }[] = [
  { stage: 'ingest', contract: ingestJob },
  { stage: 'validate', contract: validateJob },
  { stage: 'snapshot', contract: snapshotJob },
];

/** Uploads Postgres calls unfinished (received, processing, stored but not yet searchable) whose next job Redis may have lost. */
export const uploadsReconciler: Reconciler = {
  name: 'uploads',
  async find(ctx, cutoff) {
    const uploads = await ctx.em.find(
      Upload,
      { $or: [{ state: { $in: ['received', 'processing'] } }, { state: 'stored', indexedAt: null }], updatedAt: { $lte: cutoff } },
      { orderBy: { createdAt: 'asc' }, limit: 10_000 },
    );
    // The uploads of import items run inside their item's job, which the imports reconciler looks after.
    const imported = new Set(
      uploads.length === 0
        ? []
        : (await ctx.em.execute<{ id: string }[]>('select id from import_items where id = any(?::uuid[])', [sqlArray(uploads.map((u) => u.id))])).map(
            (row) => row.id,
          ),
    );
    return uploads.flatMap((upload) => {
      // Stored but not yet searchable is the index job's business, whoever made the upload.
      if (imported.has(upload.id) && upload.state !== 'stored') return [];
      const step = nextUploadJob(upload);
      return step ? [{ subject: upload.id, ...step }] : [];
    });
  },
  async finalise(ctx, candidate, error) {
    // The index job has no final failure to record: the upload is stored, and reconcile tries again.
    const stage = UPLOAD_STAGES.find((s) => s.contract === candidate.contract)?.stage;
    if (stage) await failUploadStage(ctx.em, ctx, stage, candidate.subject, error);
  },
};
