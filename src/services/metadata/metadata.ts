import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { Project } from '../../entities/Project.js';
import { Structure } from '../../entities/Structure.js';

export type Metadata = Record<string, unknown>;

export interface MetadataProblem {
  /** JSON pointer into the metadata ("" for the object itself). */
  path: string;
  message: string;
}

// One compiler for user schemas: all errors (a scientist fixes them in one go); unknown keywords
// refused, so a misspelt one is reported when the schema is set rather than silently ignored, but
// valid schemas in a looser style (required keys not listed in properties, no "type") accepted.
const ajv = new Ajv({ allErrors: true, strictSchema: true, strictNumbers: true, strictTypes: false, strictTuples: false, strictRequired: false });
// "format": "date", "email", "uri"... are common in lab metadata schemas; without these they would be refused.
// CommonJS with a `default` property: Node hands over module.exports, TypeScript types the namespace.
const addFormats = (ajvFormats as unknown as { default?: typeof ajvFormats.default }).default ?? (ajvFormats as unknown as typeof ajvFormats.default);
addFormats(ajv);
const compiled = new Map<string, ValidateFunction>();
const CACHE_LIMIT = 500;

function schemaKey(schema: Metadata): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex');
}

/** Compiles a project's metadata schema (cached by content); throws with ajv's reason when it is not a usable schema. */
export function compileMetadataSchema(schema: Metadata): ValidateFunction {
  const key = schemaKey(schema);
  const cached = compiled.get(key);
  if (cached) return cached;
  const { $id: _id, ...anonymous } = schema; // ids would clash between projects in one compiler
  const validate = ajv.compile(anonymous);
  if (compiled.size >= CACHE_LIMIT) compiled.clear();
  compiled.set(key, validate);
  return validate;
}

/** What is wrong with `metadata` under `schema`; empty when it fits (or there is no schema). */
export function metadataProblems(schema: Metadata | null | undefined, metadata: Metadata): MetadataProblem[] {
  if (!schema) return [];
  const validate = compileMetadataSchema(schema);
  if (validate(metadata)) return [];
  return (validate.errors ?? []).map((error) => ({
    path: error.instancePath,
    message: `${error.instancePath ? `${error.instancePath.slice(1).replace(/\//g, '.')} ` : ''}${error.message ?? 'is not valid'}${
      error.keyword === 'additionalProperties' ? ` (${(error.params as { additionalProperty?: string }).additionalProperty})` : ''
    }${error.keyword === 'enum' ? ` (${((error.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')})` : ''}`,
  }));
}

export async function projectMetadataSchema(em: EntityManager, projectId: string): Promise<Metadata | null> {
  const project = await em.findOne(Project, { id: projectId }, { fields: ['id', 'metadataSchema'] });
  return project?.metadataSchema ?? null;
}

/** The metadata a structure will have once an upload's metadata is merged in (a new structure has the upload's as it is). */
export async function metadataAfterUpload(em: EntityManager, structureId: string | undefined, metadata: Metadata): Promise<Metadata> {
  const existing = structureId ? await em.findOne(Structure, { id: structureId }) : null;
  return existing ? { ...existing.metadata, ...metadata } : metadata;
}

/** JSON merge patch (RFC 7396): null removes a key, objects merge recursively, anything else replaces. */
export function mergePatch(target: Metadata, patch: Metadata): Metadata {
  const result: Metadata = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (isPlainObject(value) && isPlainObject(result[key])) result[key] = mergePatch(result[key] as Metadata, value);
    else if (isPlainObject(value)) result[key] = mergePatch({}, value);
    else result[key] = value;
  }
  return result;
}

function isPlainObject(value: unknown): value is Metadata {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
