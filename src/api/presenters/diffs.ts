import type { EntityManager } from '@mikro-orm/postgresql';
import type { StructureVersion } from '../../entities/StructureVersion.js';
import type { VersionDiff } from '../../entities/VersionDiff.js';
import type { DiffOptions } from '../../formats/diff.js';
import { blobSizes } from '../../services/versions/lookup.js';

/** A version as a diff names it. */
export function presentVersionRef(version: StructureVersion) {
  return { number: version.number, format: version.format, sha256: version.blob, filename: version.filename, createdAt: version.createdAt.toISOString() };
}

/** Field-by-field differences of two plain objects (values compared as JSON). */
function fieldChanges(from: Record<string, unknown>, to: Record<string, unknown>) {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (JSON.stringify(from[key] ?? null) !== JSON.stringify(to[key] ?? null)) changes[key] = { from: from[key] ?? null, to: to[key] ?? null };
  }
  return changes;
}

/** The structural comparison of two versions (cached) with what changed in their files and summaries. */
export async function presentDiff(em: EntityManager, a: StructureVersion, b: StructureVersion, options: DiffOptions, cached: VersionDiff) {
  const sizes = await blobSizes(em, [a.blob, b.blob]);
  const record = (v: StructureVersion) => ({
    format: v.format,
    filename: v.filename,
    size: sizes.get(v.blob) ?? 0,
    sha256: v.blob,
    message: v.message ?? null,
    author: v.author ?? null,
  });
  return {
    from: presentVersionRef(a),
    to: presentVersionRef(b),
    options,
    identicalBytes: a.blob === b.blob,
    structural: cached.result,
    changes: {
      version: fieldChanges(record(a), record(b)),
      summary: fieldChanges(a.summary as unknown as Record<string, unknown>, b.summary as unknown as Record<string, unknown>),
    },
    computeMs: cached.computeMs,
    computedAt: cached.createdAt.toISOString(),
  };
}
