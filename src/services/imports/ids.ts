import { createHash } from 'node:crypto';

/** A UUID (version 5 layout) derived from a name, so the same input always gives the same id. */
function uuidFrom(name: string): string {
  const bytes = createHash('sha256').update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The id of the item at `position` in a batch (also its staging entry and its Upload's id).
 * Deterministic, so an expansion that crashed and runs again writes to the same places.
 */
export const importItemId = (batchId: string, position: number) => uuidFrom(`molvault-import-item:${batchId}:${position}`);

/** The staging entry holding the small files of one chunk of a multipart import (services/upload/bundles.ts). */
export const importBundleId = (batchId: string, chunk: number) => uuidFrom(`molvault-import-bundle:${batchId}:${chunk}`);

/** The structure a manifest's structure becomes in this import. */
export const restoredStructureId = (batchId: string, manifestStructureId: string) => uuidFrom(`molvault-import-structure:${batchId}:${manifestStructureId}`);
