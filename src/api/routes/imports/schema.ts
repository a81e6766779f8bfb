import { z } from 'zod';
import { IMPORT_BATCH_STATES, IMPORT_SOURCES } from '../../../entities/ImportBatch.js';
import { IMPORT_ITEM_STATES } from '../../../entities/ImportItem.js';
import { listQuery } from '../../schemas/common.js';

const errorObject = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

export const importItemSchema = z.object({
  position: z.number().int(),
  name: z.string(),
  state: z.enum(IMPORT_ITEM_STATES),
  structureId: z.uuid().optional(),
  sha256: z.string().optional(),
  error: errorObject.optional(),
});

export const importSummarySchema = z.object({
  id: z.uuid(),
  projectId: z.uuid(),
  source: z.enum(IMPORT_SOURCES),
  state: z.enum(IMPORT_BATCH_STATES),
  total: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  skipped: z.number().int(),
  pending: z.number().int(),
  jobId: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** Why the import as a whole failed; `status` is the HTTP status the refusal would have had (507 over quota). */
  error: errorObject.extend({ status: z.number().int().optional() }).optional(),
});

export const importSchema = importSummarySchema.extend({
  items: z.array(importItemSchema),
  nextCursor: z.string().nullable(),
});

export const acceptedImportSchema = z.object({
  import: z.object({ id: z.uuid(), state: z.enum(IMPORT_BATCH_STATES), source: z.enum(IMPORT_SOURCES), jobId: z.string() }),
});

export const importQuery = listQuery.extend({
  /** One state or several, comma-separated: `rejected,failed`. */
  state: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return undefined;
      const states = v.split(',').map((s) => s.trim());
      const unknown = states.filter((s) => !(IMPORT_ITEM_STATES as readonly string[]).includes(s));
      if (unknown.length) {
        ctx.addIssue({ code: 'custom', message: `unknown item state ${unknown.join(', ')} (one of ${IMPORT_ITEM_STATES.join(', ')})` });
        return z.NEVER;
      }
      return states;
    }),
});

export const listImportsQuery = listQuery.extend({ project: z.uuid().optional() });

export const importFieldsDoc = {
  file: 'A structure file; repeat the field for many. The file name may be a relative path (sub/dir/x.pdb), kept as the item name. Or one zip/tar/tar.gz archive.',
  tags: 'Tags for every imported structure: repeat the field or separate with commas',
  metadata: 'A JSON object merged into every imported structure’s metadata',
};

export const checkContentBody = z.object({
  sha256: z
    .array(z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lower-case hex'))
    .min(1)
    .max(10_000),
});

export const checkContentSchema = z.object({
  stored: z.array(z.object({ sha256: z.string(), structureId: z.uuid(), name: z.string() })),
});
