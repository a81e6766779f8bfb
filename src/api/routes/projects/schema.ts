import { z } from 'zod';
import { metadataSchema, tagsSchema } from '../../schemas/common.js';
import { text } from '../../text.js';

export const projectSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  pruning: z.object({ keepLast: z.number().nullable(), keepDays: z.number().nullable() }),
  structureCount: z.number(),
  usedBytes: z.number(),
  /** The owner of record: the user whose quota the project's storage counts against. */
  ownerId: z.uuid(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const createProjectBody = z.object({
  name: text().trim().min(1).max(200),
  description: text().max(10_000).optional(),
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
  /** Version retention: keep the newest keepLast versions and/or those younger than keepDays; null turns a rule off. Pinned and current versions are always kept. */
  pruning: z
    .object({
      keepLast: z.number().int().min(1).max(1_000_000).nullable().optional(),
      keepDays: z.number().int().min(0).max(100_000).nullable().optional(),
    })
    .optional(),
});

export const updateProjectBody = createProjectBody.partial().extend({
  /** Transfers the project to another of its owner members, who is charged for it from then on. */
  ownerId: z.uuid({ error: 'must be a user id (UUID)' }).optional(),
});
