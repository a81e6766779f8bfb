import { createHash } from 'node:crypto';
import type { DiffOptions } from '../formats/diff.js';

/** Options as canonical text (sorted keys): the same options always name the same derivation. */
export function optionsKey(options: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(options).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify(sorted);
}

/** Bumped whenever the diff's content changes, so cached answers of an older molvault are not served. */
const DIFF_FORMAT = 2;

/** A diff's cache key: both blob hashes (order matters: from → to) and every option that changes the answer. */
export function diffKey(fromSha: string, toSha: string, options: DiffOptions): string {
  const canonical = JSON.stringify([DIFF_FORMAT, fromSha, toSha, options.moveThreshold, options.bfactorThreshold, options.occupancyThreshold, options.limit]);
  return createHash('sha256').update(canonical).digest('hex');
}
