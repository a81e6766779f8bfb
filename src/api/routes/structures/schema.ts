import { z } from 'zod';
import { STRUCTURE_KINDS } from '../../../entities/Structure.js';
import { FORMATS } from '../../../formats/types.js';
import { listQuery, metadataSchema, tagsSchema } from '../../common.js';

export const summarySchema = z
  .object({
    atoms: z.number(),
    models: z.number(),
    chains: z.number(),
    residues: z.number(),
    title: z.string().optional(),
    method: z.string().optional(),
    resolution: z.number().optional(),
    formula: z.string().optional(),
  })
  .loose();

export const versionSchema = z.object({
  number: z.number().int(),
  format: z.string(),
  size: z.number(),
  sha256: z.string(),
  filename: z.string(),
  message: z.string().nullable(),
  author: z.string().nullable(),
  pinned: z.boolean(),
  createdAt: z.string(),
  summary: summarySchema,
  warnings: z.array(z.object({ code: z.string(), message: z.string(), line: z.number().optional() })),
});

export const structureSchema = z.object({
  id: z.uuid(),
  projectId: z.uuid(),
  name: z.string(),
  description: z.string(),
  kind: z.enum(STRUCTURE_KINDS),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  currentVersion: versionSchema.nullable(),
  viewCount: z.number(),
  downloadCount: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  deletedAt: z.string().nullable(),
});

export const uploadSchema = z.object({
  id: z.uuid(),
  state: z.enum(['received', 'processing', 'stored', 'rejected', 'failed']),
  projectId: z.uuid(),
  structureId: z.uuid(),
  version: z.number().nullable(),
  filename: z.string(),
  format: z.string().nullable(),
  compression: z.string().nullable(),
  receivedBytes: z.number(),
  searchable: z.boolean(),
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }).optional(),
  warnings: z.array(z.object({ code: z.string(), message: z.string() })).optional(),
  jobs: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const acceptedSchema = z.object({
  upload: z.object({ id: z.uuid(), state: z.string() }),
  structure: z.object({ id: z.uuid() }),
});

export const uploadFieldsDoc = {
  file: 'The structure file (PDB, mmCIF, SDF/MOL, MOL2, XYZ; .gz or .bz2 accepted)',
  name: 'Structure name (default: the file name)',
  description: 'Free text',
  tags: 'Tags: repeat the field or separate with commas',
  metadata: 'A JSON object',
  format: `Declared format (${FORMATS.join(', ')}); checked against the content`,
  message: 'Version message',
};

export const listStructuresQuery = listQuery.extend({
  project: z.uuid().optional(),
  tag: z.union([z.string(), z.array(z.string())]).optional(),
  kind: z.enum(STRUCTURE_KINDS).optional(),
  format: z.string().optional(),
  q: z.string().optional(),
  sort: z.enum(['created', '-created', 'name', '-name', 'updated', '-updated']).default('-created'),
  trashed: z.enum(['true', 'false']).optional(),
});

export const updateStructureBody = z.object({
  name: z.string().trim().min(1).max(255).optional(),
  description: z.string().max(10_000).optional(),
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
});

export const downloadQuery = z.object({
  version: z.coerce.number().int().min(1).optional(),
  format: z.string().optional(),
});

export const deleteQuery = z.object({ purge: z.enum(['true', 'false']).optional() });
export const versionParams = z.object({ id: z.uuid(), n: z.coerce.number().int().min(1) });
