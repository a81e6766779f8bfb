import { UPLOAD_JOBS } from '../queue/jobs.js';
import type { Project } from './Project.js';
import type { Structure } from './Structure.js';
import type { StructureVersion } from './StructureVersion.js';
import type { Upload } from './Upload.js';

export function serializeProject(project: Project, stats: { structureCount: number; usedBytes: number }) {
  return {
    id: project.id,
    name: project.name,
    description: project.description,
    tags: project.tags,
    metadata: project.metadata,
    pruning: { keepLast: project.pruneKeepLast ?? null, keepDays: project.pruneKeepDays ?? null },
    structureCount: stats.structureCount,
    usedBytes: stats.usedBytes,
    createdAt: project.createdAt.toISOString(),
    updatedAt: project.updatedAt.toISOString(),
  };
}

export function serializeVersion(version: StructureVersion, size: number) {
  return {
    number: version.number,
    format: version.format,
    size,
    sha256: version.blob,
    filename: version.filename,
    message: version.message ?? null,
    author: version.author ?? null,
    pinned: version.pinned,
    createdAt: version.createdAt.toISOString(),
    summary: version.summary,
    warnings: version.validation.warnings,
  };
}

export function serializeStructure(structure: Structure, current: { version: StructureVersion; size: number } | null) {
  return {
    id: structure.id,
    projectId: structure.project,
    name: structure.name,
    description: structure.description,
    kind: structure.kind,
    tags: structure.tags,
    metadata: structure.metadata,
    currentVersion: current ? serializeVersion(current.version, current.size) : null,
    viewCount: structure.viewCount,
    downloadCount: structure.downloadCount,
    createdAt: structure.createdAt.toISOString(),
    updatedAt: structure.updatedAt.toISOString(),
    deletedAt: structure.deletedAt ? structure.deletedAt.toISOString() : null,
  };
}

export function serializeUpload(upload: Upload) {
  const { status: _status, ...error } = upload.error ?? { status: 0 };
  return {
    id: upload.id,
    state: upload.state,
    projectId: upload.project,
    structureId: upload.structureId,
    version: upload.version ?? null,
    filename: upload.filename,
    format: upload.format ?? null,
    compression: upload.compression ?? null,
    receivedBytes: upload.receivedBytes,
    searchable: upload.indexedAt !== null && upload.indexedAt !== undefined,
    ...(upload.error ? { error } : {}),
    ...(upload.validation?.warnings?.length ? { warnings: upload.validation.warnings } : {}),
    jobs: UPLOAD_JOBS.map((job) => job.jobId({ uploadId: upload.id, ownerId: upload.owner, structureId: upload.structureId })),
    createdAt: upload.createdAt.toISOString(),
    updatedAt: upload.updatedAt.toISOString(),
  };
}
