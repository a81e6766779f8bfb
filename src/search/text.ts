import { indexTokens } from './query.js';
import type { SearchDocument } from './types.js';

/**
 * The text a document is found by, in three weights: A (name, PDB id), B (title, tags, file name,
 * ligands), C (the rest); and `body`, all of it on one line, which highlights are cut from. Both
 * backends index these same texts through indexTokens.
 */
export function searchText(doc: SearchDocument) {
  const strong = [doc.name, doc.pdbId ?? ''].join(' ');
  const medium = [doc.title ?? '', doc.tags.join(' '), doc.filename ?? '', doc.ligands.join(' ')].join(' ');
  const weak = [doc.description, doc.metadataText.join(' '), doc.method ?? '', doc.formula ?? '', doc.organism ?? ''].join(' ');
  // Control characters become spaces too: the Postgres backend returns a page's texts joined by one.
  const body = [strong, medium, weak]
    .join(' ')
    .replace(/[\s\p{Cc}]+/gu, ' ')
    .trim();
  return { strong, medium, weak, body };
}

/** A text's index tokens joined by spaces, for a backend that splits at spaces (Typesense). */
export const tokenText = (text: string) => indexTokens(text).join(' ');
