import { z } from 'zod';
import { DEFAULT_DIFF_OPTIONS } from '../../../formats/diff.js';
import { listQuery } from '../../schemas/common.js';
import { structureSchema } from '../../schemas/structures.js';
import { text } from '../../text.js';

export const pinBody = z.object({ pinned: z.boolean() });

export const rollbackBody = z.object({
  version: z.number().int().min(1),
  message: text().max(10_000).optional(),
});

export const diffQuery = z.object({
  from: z.coerce.number().int().min(1).optional(),
  to: z.coerce.number().int().min(1).optional(),
  moveThreshold: z.coerce.number().min(0).max(1000).default(DEFAULT_DIFF_OPTIONS.moveThreshold),
  bfactorThreshold: z.coerce.number().min(0).default(DEFAULT_DIFF_OPTIONS.bfactorThreshold),
  occupancyThreshold: z.coerce.number().min(0).max(1).default(DEFAULT_DIFF_OPTIONS.occupancyThreshold),
  limit: z.coerce.number().int().min(0).max(10_000).default(DEFAULT_DIFF_OPTIONS.limit),
});

const listed = z.object({ count: z.number(), items: z.array(z.record(z.string(), z.unknown())), truncated: z.boolean() });

const versionRef = z.object({ number: z.number(), format: z.string(), sha256: z.string(), filename: z.string(), createdAt: z.string() });

export const diffSchema = z.object({
  from: versionRef,
  to: versionRef,
  options: z.object({ moveThreshold: z.number(), bfactorThreshold: z.number(), occupancyThreshold: z.number(), limit: z.number() }),
  identicalBytes: z.boolean(),
  structural: z
    .object({
      models: z.object({ from: z.number(), to: z.number() }),
      chains: z.object({ from: z.number(), to: z.number(), added: z.array(z.string()), removed: z.array(z.string()) }),
      residues: z.object({ from: z.number(), to: z.number(), added: listed, removed: listed, mutated: listed }),
      ligands: z.object({ added: listed, removed: listed }),
      waters: z.object({ added: z.number(), removed: z.number() }),
      atoms: z.object({ from: z.number(), to: z.number(), matched: z.number(), added: listed, removed: listed, moved: listed }),
      rmsd: z.number().nullable(),
      rmsdSuperposed: z.number().nullable(),
      maxDisplacement: z.number().nullable(),
      bfactors: listed,
      occupancies: listed,
      structurallyIdentical: z.boolean(),
      warnings: z.array(z.object({ code: z.string(), message: z.string() })),
    })
    .loose(),
  changes: z.object({
    version: z.record(z.string(), z.object({ from: z.unknown(), to: z.unknown() })),
    summary: z.record(z.string(), z.object({ from: z.unknown(), to: z.unknown() })),
  }),
  computeMs: z.number(),
  computedAt: z.string(),
});

export const trashQuery = listQuery.extend({ project: z.uuid().optional() });

export const trashItemSchema = structureSchema.extend({ purgeAt: z.string() });
