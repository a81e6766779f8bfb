import type { ExportArchive } from '../../entities/ExportArchive.js';
import { exportJobId } from '../../queue/jobs.js';

/** An export as users see it (GET /v1/exports/:id), with the job's progress while it is under way. */
export function presentExport(row: ExportArchive, progress?: unknown) {
  const completed = row.state === 'completed';
  return {
    id: row.id,
    state: row.state,
    projectId: row.project ?? null,
    structureIds: row.selection ?? null,
    format: row.format,
    versions: row.versions,
    archive: row.archive,
    filename: row.filename,
    size: completed ? row.size : null,
    sha256: completed ? (row.blob ?? null) : null,
    files: completed ? row.fileCount : null,
    problems: row.problems,
    jobId: exportJobId(row.id),
    ...(progress !== undefined && progress !== null && (row.state === 'pending' || row.state === 'running') ? { progress } : {}),
    createdAt: row.createdAt.toISOString(),
    finishedAt: row.finishedAt ? row.finishedAt.toISOString() : null,
    expiresAt: row.expiresAt.toISOString(),
    ...(row.error ? { error: { code: row.error.code, message: row.error.message } } : {}),
    downloadUrl: completed ? `/v1/exports/${row.id}/download` : null,
  };
}
