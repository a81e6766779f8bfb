/**
 * Limits every JSON text a client sends must keep, checked before anything walks it recursively or
 * hands it to Postgres: nesting at most MAX_JSON_DEPTH levels (deeper documents overflow the stack
 * of recursive validators), and no NUL character anywhere (Postgres text and jsonb cannot hold one).
 */
export const MAX_JSON_DEPTH = 64;

/** What a scientist reads when a text holds a NUL character. */
export const NUL_MESSAGE = 'must not contain the NUL character (\\u0000), which molvault cannot store';

/** Whether a string holds a NUL character. */
export const hasNul = (text: string) => text.includes('\u0000');

/**
 * How deeply a JSON text nests arrays and objects, counted on the raw text without parsing it (so a
 * hostile document cannot overflow anything); stops counting once past `limit`.
 */
export function jsonNestingDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** A place in a JSON value a sentence can name: `metadata.organism`, `tags[2]`, `` for the value itself. */
export function jsonPath(parts: readonly (string | number)[]): string {
  let path = '';
  for (const part of parts) {
    if (typeof part === 'number') path += `[${part}]`;
    else path += path ? `.${part}` : part;
  }
  return path;
}

export type JsonTextProblem = { kind: 'nul'; path: string; inKey: boolean } | { kind: 'too_deep'; path: string };

/**
 * The first place in a parsed value (strings, object keys, at any depth) that breaks the limits:
 * a NUL character, or nesting past `maxDepth`. Walks without recursion.
 */
export function jsonTextProblem(value: unknown, prefix: readonly (string | number)[] = [], maxDepth = MAX_JSON_DEPTH): JsonTextProblem | undefined {
  const stack: { value: unknown; path: (string | number)[]; depth: number }[] = [{ value, path: [...prefix], depth: 0 }];
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop() as (typeof stack)[number];
    if (typeof current === 'string') {
      if (hasNul(current)) return { kind: 'nul', path: jsonPath(path), inKey: false };
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= maxDepth) return { kind: 'too_deep', path: jsonPath(path) };
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], path: [...path, i], depth: depth + 1 });
      continue;
    }
    const entries = Object.entries(current);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i];
      if (hasNul(key)) return { kind: 'nul', path: jsonPath([...path, key.split('\u0000').join('\\u0000')]), inKey: true };
      stack.push({ value: child, path: [...path, key], depth: depth + 1 });
    }
  }
  return undefined;
}

/** The sentence for a problem, naming the field. */
export function jsonTextProblemMessage(problem: JsonTextProblem, where = 'The request'): string {
  if (problem.kind === 'too_deep')
    return `${where} nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep${problem.path ? ` (at ${problem.path})` : ''}; molvault accepts at most ${MAX_JSON_DEPTH}.`;
  const field = problem.path || 'value';
  return problem.inKey ? `${where}: the key ${field} ${NUL_MESSAGE}.` : `${where}: ${field} ${NUL_MESSAGE}.`;
}
