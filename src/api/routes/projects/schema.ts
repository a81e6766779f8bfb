import { z } from 'zod';
import { metadataSchema, tagsSchema } from '../../common.js';

export const projectSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  structureCount: z.number(),
  usedBytes: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const createProjectBody = z.object({
  name: z.string().trim().min(1).max(200),
  description: z.string().max(10_000).optional(),
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
});

export const updateProjectBody = createProjectBody.partial();
