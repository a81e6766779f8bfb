import { z } from 'zod';
import { FORMATS } from '../../formats/types.js';

/**
 * The `manifest.json` at the root of every export archive: enough to rebuild the project in
 * another project or another molvault (names, tags, metadata, kinds, every exported version in
 * order, with its message and pin), and the sha256 of every file so an import can check what it
 * read. Written by the export job, read back by the import of an archive that contains it.
 */
export const MANIFEST_FILENAME = 'manifest.json';
export const MANIFEST_VERSION = 1;

const iso = z.string();

export const manifestVersion = z.object({
  number: z.number().int().min(1),
  /** Path of this version's file inside the archive (forward slashes, relative, no `..`). */
  path: z.string().min(1),
  /** Format of the file in the archive (the stored one, or the export's target format). */
  format: z.enum(FORMATS),
  size: z.number().int().min(0),
  /** sha256 of the file exactly as it is in the archive. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The stored original: its format and sha256 (differs from the above when converted). */
  originalFormat: z.enum(FORMATS),
  originalSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The file name it was uploaded under. */
  filename: z.string(),
  message: z.string().nullable(),
  pinned: z.boolean(),
  current: z.boolean(),
  createdAt: iso,
  /** The uploading user's id in the exporting molvault (absent in manifests written before it was recorded). */
  author: z.uuid().nullable().optional(),
  /** Set when the file was converted for the export: which engine made it. */
  conversion: z.object({ engine: z.string(), engineVersion: z.string().nullable() }).nullable(),
});

export const manifestStructure = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string(),
  kind: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  createdAt: iso,
  /** Oldest first; with versions "current", only the current one. */
  versions: z.array(manifestVersion).min(1),
  /** Relationships from this structure to others of the export, by their manifest ids (absent in older manifests). */
  relationships: z.array(z.object({ type: z.string(), targetId: z.uuid(), createdAt: iso })).optional(),
});

export const exportManifest = z.object({
  molvault: z.literal(MANIFEST_VERSION),
  exportId: z.uuid(),
  exportedAt: iso,
  /** The exported project (null when the export is a selection spanning projects). */
  project: z
    .object({
      id: z.uuid(),
      name: z.string(),
      description: z.string(),
      tags: z.array(z.string()),
      metadata: z.record(z.string(), z.unknown()),
    })
    .nullable(),
  format: z.union([z.literal('original'), z.enum(FORMATS)]),
  versions: z.enum(['current', 'all']),
  structures: z.array(manifestStructure),
  /** Every file in the archive but the manifest itself. */
  files: z.array(z.object({ path: z.string(), size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});

export type ExportManifest = z.infer<typeof exportManifest>;
export type ManifestStructure = z.infer<typeof manifestStructure>;
export type ManifestVersion = z.infer<typeof manifestVersion>;
