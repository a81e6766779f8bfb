import { z } from 'zod';
import { expiresInSchema } from '../../schemas/sharing.js';

export const createLinkBody = z.object({
  /** A fixed version; without it the link follows the current version and shows every version. */
  version: z.number().int().min(1).optional(),
  /** `original` (default) or a format to convert to. */
  format: z.string().max(20).optional(),
  expiresIn: expiresInSchema,
  password: z.string().min(4).max(200).optional(),
});

export const linkIdParams = z.object({ id: z.string().min(1).max(64) });

export const linkFileParams = z.object({ id: z.string().min(1).max(64), filename: z.string().min(1).max(300) });

export const linkOpenQuery = z.object({
  version: z.coerce.number().int().min(1).optional(),
  download: z.enum(['1', 'true', '0', 'false']).optional(),
});

export const linkSchema = z.object({
  id: z.string(),
  url: z.string(),
  structureId: z.string(),
  version: z.number().nullable(),
  format: z.string(),
  expiresAt: z.string().nullable(),
  createdAt: z.string(),
  createdBy: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  password: z.boolean(),
  state: z.enum(['active', 'expired', 'revoked']),
});
