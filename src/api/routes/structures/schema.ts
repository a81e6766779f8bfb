import { z } from 'zod';
import { STRUCTURE_KINDS } from '../../../entities/Structure.js';
import { FORMATS } from '../../../formats/types.js';
import { listQuery, metadataSchema, tagsSchema } from '../../schemas/common.js';
import { text } from '../../text.js';

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
  name: text().trim().min(1).max(255).optional(),
  description: text().max(10_000).optional(),
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
});

export const downloadQuery = z.object({
  version: z.coerce.number().int().min(1).optional(),
  format: z.string().optional(),
});

export const deleteQuery = z.object({ purge: z.enum(['true', 'false']).optional() });
