import { InvalidCursorError, type SearchQuery, type SearchSort } from './types.js';

/** Words of a free-text query, lower-cased, as both backends split them (letters and digits). */
export function queryWords(q: string | undefined): string[] {
  return (q ?? '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .slice(0, 16);
}

export function effectiveSort(query: SearchQuery): SearchSort {
  if (query.sort === 'relevance' && queryWords(query.q).length === 0) return '-created';
  return query.sort ?? (queryWords(query.q).length ? 'relevance' : '-created');
}

/** Opaque cursor: base64url JSON, tagged with the sort it belongs to so it cannot be replayed under another. */
export function encodeSearchCursor(sort: SearchSort, value: unknown): string {
  return Buffer.from(JSON.stringify({ s: sort, v: value })).toString('base64url');
}

export function decodeSearchCursor<T>(cursor: string | undefined, sort: SearchSort, check: (value: unknown) => value is T): T | undefined {
  if (!cursor) return undefined;
  let parsed: { s?: unknown; v?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!parsed || parsed.s !== sort || !check(parsed.v)) throw new InvalidCursorError();
  return parsed.v;
}
