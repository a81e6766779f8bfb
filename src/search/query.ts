import { InvalidCursorError, type SearchQuery, type SearchSort } from './types.js';

/**
 * Words are runs of letters and digits. Names and file names join words with dots, underscores and
 * hyphens ("1hpv.pdb", "first_200", "Mn1.854Fe0.146-Guidottiite"): such a compound is indexed whole
 * and by its parts, and a query made of one finds it by its parts (every part must match).
 */
const COMPOUND = /[\p{L}\p{N}]+(?:[._-][\p{L}\p{N}]+)*/gu;
const PART = /[\p{L}\p{N}]+/gu;
/** Query words taken from one query: more say nothing a scientist means and only slow the search down. */
const MAX_QUERY_WORDS = 16;
/**
 * Longer tokens are left out of the index (a sequence or SMILES pasted into metadata): Postgres
 * refuses a lexeme over 2047 bytes, and nobody types one into a search box.
 */
export const MAX_TOKEN_LENGTH = 500;

/** One compound of a query: its parts, and the whole when it has more than one part. */
export interface QueryTerm {
  whole?: string;
  parts: string[];
}

/** The compounds of a text, lower-cased, each with its parts. */
function compounds(text: string): QueryTerm[] {
  const terms: QueryTerm[] = [];
  for (const [found] of text.toLowerCase().matchAll(COMPOUND)) {
    const parts = found.match(PART) ?? [];
    terms.push(parts.length > 1 ? { whole: found, parts } : { parts });
  }
  return terms;
}

/**
 * The tokens a text is indexed by, in order: each compound whole, then its parts; a plain word once.
 * Both backends index these, so a document is found the same way whichever one serves it.
 */
export function indexTokens(text: string): string[] {
  const tokens: string[] = [];
  for (const { whole, parts } of compounds(text)) {
    if (whole && whole.length <= MAX_TOKEN_LENGTH) tokens.push(whole);
    for (const part of parts) if (part.length <= MAX_TOKEN_LENGTH) tokens.push(part);
  }
  return tokens;
}

/** The compounds of a free-text query, at most {@link MAX_QUERY_WORDS} parts in all. */
export function queryTerms(q: string | undefined): QueryTerm[] {
  const terms: QueryTerm[] = [];
  let words = 0;
  for (const term of compounds(q ?? '')) {
    const parts = term.parts.slice(0, MAX_QUERY_WORDS - words);
    if (parts.length === 0) break;
    words += parts.length;
    terms.push(parts.length === term.parts.length ? term : { parts });
  }
  return terms;
}

/** Words of a free-text query, lower-cased, as both backends split them (letters and digits). */
export function queryWords(q: string | undefined): string[] {
  return queryTerms(q).flatMap((term) => term.parts);
}

/**
 * How many typos a query word may hold, as Typesense counts them (Damerau–Levenshtein: an insertion,
 * deletion, substitution or swap of neighbours each count one): none under 4 letters, one from 4,
 * two from 8.
 */
export function typosAllowed(word: string): 0 | 1 | 2 {
  const length = [...word].length;
  return length >= TYPO_TWO_FROM ? 2 : length >= TYPO_ONE_FROM ? 1 : 0;
}
export const TYPO_ONE_FROM = 4;
export const TYPO_TWO_FROM = 8;

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
