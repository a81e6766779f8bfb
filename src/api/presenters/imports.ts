import type { EntityManager } from '@mikro-orm/postgresql';
import type { ImportBatch } from '../../entities/ImportBatch.js';
import type { ImportItem } from '../../entities/ImportItem.js';
import { type BatchCounts, batchCounts } from '../../services/imports/batches.js';

/** The 202 body of an import taken in: the ids to follow it by. */
export function presentAcceptedImport(batch: ImportBatch) {
  return { import: { id: batch.id, state: batch.state, source: batch.source, jobId: batch.jobId } };
}

export function presentImportSummary(batch: ImportBatch, counts: BatchCounts) {
  return {
    id: batch.id,
    projectId: batch.project,
    source: batch.source,
    state: batch.state,
    total: counts.total,
    succeeded: counts.succeeded,
    failed: counts.failed,
    skipped: counts.skipped,
    pending: counts.pending,
    jobId: batch.jobId,
    createdAt: batch.createdAt.toISOString(),
    updatedAt: batch.updatedAt.toISOString(),
    finishedAt: batch.finishedAt ? batch.finishedAt.toISOString() : null,
    ...(batch.error
      ? {
          error: {
            code: batch.error.code,
            message: batch.error.message,
            ...(batch.error.status ? { status: batch.error.status } : {}),
            ...(batch.error.details ? { details: batch.error.details } : {}),
          },
        }
      : {}),
  };
}

export function presentImportItem(item: ImportItem) {
  return {
    position: item.position,
    name: item.name,
    state: item.state,
    ...(item.structureId ? { structureId: item.structureId } : {}),
    ...(item.sha256 ? { sha256: item.sha256 } : {}),
    ...(item.error ? { error: item.error } : {}),
  };
}

export async function presentImportSummaries(em: EntityManager, batches: ImportBatch[]) {
  const counts = await batchCounts(
    em,
    batches.map((b) => b.id),
  );
  return batches.map((batch) => presentImportSummary(batch, counts.get(batch.id) as BatchCounts));
}
