import { z } from 'zod';

/** Request and answer pieces many routes share. */

export const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
});

export const tagsSchema = z.array(z.string().trim().min(1).max(100)).max(100);
export const metadataSchema = z.record(z.string(), z.unknown());
