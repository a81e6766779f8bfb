import { z } from 'zod';
import { STRUCTURE_KINDS } from '../../entities/Structure.js';

/** Structures, versions and uploads as every route that answers with them describes them. */

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

export const versionParams = z.object({ id: z.uuid(), n: z.coerce.number().int().min(1) });
