import { z } from 'zod';
import { hasNul, jsonNestingDepth, jsonTextProblem, jsonTextProblemMessage, MAX_JSON_DEPTH, NUL_MESSAGE } from '../lib/jsonText.js';
import { ApiError } from './errors.js';

/**
 * Text a client sends, the one way every schema takes it: a string without NUL characters
 * (Postgres cannot store one). Chain the usual checks on it: `text().trim().min(1).max(200)`.
 */
export const text = () => z.string().refine((value) => !hasNul(value), { error: NUL_MESSAGE });

/**
 * Refuses (400, naming the field) a value holding a NUL character in any string or key, or nested
 * deeper than MAX_JSON_DEPTH. `where` starts the sentence ("The request body").
 */
export function assertSafeJson(value: unknown, where: string, prefix: readonly (string | number)[] = []): void {
  const problem = jsonTextProblem(value, prefix);
  if (!problem) return;
  const message = jsonTextProblemMessage(problem, where);
  if (problem.kind === 'too_deep') throw new ApiError(400, 'json_too_deep', message, { maxDepth: MAX_JSON_DEPTH, path: problem.path });
  throw new ApiError(400, 'invalid_request', message, { issues: [{ path: problem.path, message: NUL_MESSAGE }] });
}

/**
 * Parses JSON text a client sent (a body or a multipart field): refused with 400 when it is not
 * JSON, nests deeper than MAX_JSON_DEPTH (checked on the text, before parsing) or holds a NUL.
 */
export function parseClientJson(textValue: string, where: string, prefix: readonly (string | number)[] = []): unknown {
  const depth = jsonNestingDepth(textValue);
  if (depth > MAX_JSON_DEPTH) {
    throw new ApiError(
      400,
      'json_too_deep',
      `${where} nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; molvault accepts at most ${MAX_JSON_DEPTH}.`,
      { maxDepth: MAX_JSON_DEPTH },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(textValue);
  } catch (error) {
    throw new ApiError(400, 'invalid_json', `${where} is not valid JSON: ${(error as Error).message}`);
  }
  assertSafeJson(value, where, prefix);
  return value;
}

/** Refuses text fields (multipart fields, query strings) that hold a NUL character, naming the field. */
export function assertSafeFields(fields: Record<string, string[] | string | undefined>, where: string): void {
  for (const [name, values] of Object.entries(fields)) {
    if (hasNul(name)) throw new ApiError(400, 'invalid_request', `${where}: a field name ${NUL_MESSAGE}.`, { issues: [{ path: '', message: NUL_MESSAGE }] });
    for (const value of values === undefined ? [] : Array.isArray(values) ? values : [values]) {
      if (hasNul(value)) throw new ApiError(400, 'invalid_request', `${where}: ${name} ${NUL_MESSAGE}.`, { issues: [{ path: name, message: NUL_MESSAGE }] });
    }
  }
}

/** The `metadata` field of a multipart request or query string: a JSON object as text. */
export function parseMetadataField(textValue: string): unknown {
  try {
    return parseClientJson(textValue, 'The "metadata" field', ['metadata']);
  } catch (error) {
    if (error instanceof ApiError && error.code === 'invalid_json')
      throw new ApiError(400, 'invalid_metadata', 'The "metadata" field must be a JSON object, e.g. {"organism": "E. coli"}.');
    throw error;
  }
}
