import { Readable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import type { Staging } from '../../storage/staging.js';

/**
 * Bundles: the small files of one chunk of a multipart import, staged as one entry (their bytes one
 * after another; each import item records its bundle and offset). On an object store every staged
 * object costs a put, a get and a delete; a bundle pays them once per chunk. The chunk job reads
 * its bundle once (services/imports/chunk.ts); every path that takes a file one by one first gives
 * it an entry of its own (`unbundle`), so the rest of molvault sees staged files as before.
 */

/** Files up to this size are bundled; a larger one is staged on its own as it streams. */
export const BUNDLED_FILE_MAX_BYTES = 256 * 1024;

/** Whether this installation bundles small files (STAGING_BUNDLES; auto: on an object store only). */
export function bundlesSmallFiles(setting: 'auto' | 'on' | 'off', staging: Staging): boolean {
  return setting === 'on' || (setting === 'auto' && staging.kind === 's3');
}

/** A staged entry's bytes in memory (a bundle is at most a chunk of small files), or undefined when it is gone. */
export async function readBundle(staging: Staging, bundleId: string): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of staging.read(bundleId)) chunks.push(chunk as Buffer);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return Buffer.concat(chunks);
}

interface BundledItem {
  id: string;
  staged_bundle: string;
  staged_offset: string;
  size: string;
}

/** One item's bytes out of its bundle. */
export function bundledBytes(bundle: Buffer, item: { staged_offset: string | number | null; size: string | number | null }): Buffer {
  const start = Number(item.staged_offset ?? 0);
  return bundle.subarray(start, start + Number(item.size ?? 0));
}

/** Gives each item an entry of its own holding its bytes out of the bundle. */
export async function stageFromBundle(
  staging: Staging,
  bundle: Buffer,
  items: readonly { id: string; staged_offset: string | number | null; size: string | number | null }[],
): Promise<void> {
  for (const item of items) await staging.write(item.id, Readable.from([bundledBytes(bundle, item)]));
}

/**
 * Gives each of these items (import items, or the uploads they became: same ids) that was staged
 * in a bundle an entry of its own, unless it has one; items staged on their own are left alone.
 * Returns the ids that have an entry of their own afterwards. A bundle that is gone leaves its
 * items without one: their callers report the staged file lost, as for any lost entry.
 */
export async function unbundle(em: EntityManager, staging: Staging, ids: readonly string[]): Promise<Set<string>> {
  const done = new Set<string>();
  if (ids.length === 0) return done;
  const rows = await em.execute<BundledItem[]>(
    'select id, staged_bundle, staged_offset, size from import_items where id = any(?::uuid[]) and staged_bundle is not null',
    [sqlArray([...ids])],
  );
  const byBundle = new Map<string, BundledItem[]>();
  for (const row of rows) byBundle.set(row.staged_bundle, [...(byBundle.get(row.staged_bundle) ?? []), row]);
  for (const [bundleId, items] of byBundle) {
    const missing: BundledItem[] = [];
    for (const item of items) {
      if (await staging.exists(item.id)) done.add(item.id);
      else missing.push(item);
    }
    if (missing.length === 0) continue;
    const bundle = await readBundle(staging, bundleId);
    if (!bundle) continue;
    await stageFromBundle(staging, bundle, missing);
    for (const item of missing) done.add(item.id);
  }
  return done;
}
