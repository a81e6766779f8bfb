import { z } from 'zod';
import { ARCHIVE_KINDS, EXPORT_STATES, EXPORT_VERSIONS } from '../../../entities/ExportArchive.js';
import { FORMATS } from '../../../formats/types.js';
import { listQuery } from '../../schemas/common.js';

export const EXPORT_FORMATS = ['original', ...FORMATS] as const;

/** Most structure ids one export may select (a JSON body stays well under the 1 MiB limit). */
export const MAX_SELECTION = 10_000;

export const createExportBody = z.object({
  /** A whole project (its structures not in the trash)... */
  projectId: z.uuid({ error: 'must be the id (a UUID) of one of your projects' }).optional(),
  /** ...or a selection of your structures, from any of your projects. */
  structureIds: z
    .array(z.uuid({ error: 'must be structure ids (UUIDs)' }))
    .min(1, 'must name at least one structure')
    .max(MAX_SELECTION, `may name at most ${MAX_SELECTION} structures; export a project, or several selections`)
    .optional(),
  /** "original" (the stored bytes) or a format every version is converted to. */
  format: z.enum(EXPORT_FORMATS, { error: `must be "original" or one of ${FORMATS.join(', ')}` }).default('original'),
  versions: z.enum(EXPORT_VERSIONS, { error: 'must be "current" (each structure\'s current version) or "all" (every version)' }).default('current'),
  archive: z.enum(ARCHIVE_KINDS, { error: 'must be "zip" or "tar.gz"' }).default('zip'),
});

export const problemSchema = z.object({
  code: z.string(),
  message: z.string(),
  structureId: z.uuid().optional(),
  version: z.number().int().optional(),
});

export const exportSchema = z.object({
  id: z.uuid(),
  state: z.enum(EXPORT_STATES),
  projectId: z.uuid().nullable(),
  structureIds: z.array(z.uuid()).nullable(),
  format: z.enum(EXPORT_FORMATS),
  versions: z.enum(EXPORT_VERSIONS),
  archive: z.enum(ARCHIVE_KINDS),
  /** The download's file name. */
  filename: z.string(),
  /** Bytes of the archive, once completed. */
  size: z.number().nullable(),
  sha256: z.string().nullable(),
  /** Files in the archive (manifest.json included), once completed. */
  files: z.number().nullable(),
  /** What could not be done as asked (a version no engine converts stays in its original format). */
  problems: z.array(problemSchema),
  jobId: z.string(),
  /** While pending or running: the job's progress ({phase, done, total}). */
  progress: z.unknown().optional(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  /** When the archive is (or was) deleted; a download after that answers 410. */
  expiresAt: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  downloadUrl: z.string().nullable(),
});

export const acceptedExportSchema = z.object({
  export: z.object({ id: z.uuid(), state: z.enum(EXPORT_STATES), jobId: z.string() }),
});

export const listExportsQuery = listQuery.extend({
  state: z.enum(EXPORT_STATES, { error: `must be one of ${EXPORT_STATES.join(', ')}` }).optional(),
});
