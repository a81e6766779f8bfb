import { z } from 'zod';
import { jsonTextProblem, MAX_JSON_DEPTH, NUL_MESSAGE } from '../../lib/jsonText.js';
import { text } from '../text.js';

/** Request and answer pieces many routes share. */

export const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: text().optional(),
});

export const tagsSchema = z.array(text().trim().min(1).max(100)).max(100);
/** A JSON object; its keys and strings at any depth are checked for NUL by `assertSafeJson` (route(), the body parser). */
export const metadataSchema = z.record(text(), z.unknown()).superRefine((value, ctx) => {
  const problem = jsonTextProblem(value);
  if (problem)
    ctx.addIssue({
      code: 'custom',
      path: problem.path ? [problem.path] : [],
      message: problem.kind === 'nul' ? NUL_MESSAGE : `nests more than ${MAX_JSON_DEPTH} levels deep`,
    });
});
