import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { LossReport } from '../../engines/loss.js';
import { Derivation } from '../../entities/Derivation.js';
import { refreshUsage } from '../quota/usage.js';

/** Options as canonical text (sorted keys): the same options always name the same derivation. */
export function optionsKey(options: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(options).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify(sorted);
}

/**
 * The conversion job's id: one per (source blob, format, options), so asking twice, from anywhere,
 * enqueues one job. A UUID-shaped digest keeps it in the `<name>-<uuid>-<suffix>` job id form.
 */
export function conversionJobId(sourceSha256: string, format: string, options: Record<string, unknown>): string {
  const digest = createHash('sha256')
    .update(`${sourceSha256}\n${format}\n${optionsKey(options)}`)
    .digest('hex');
  const uuid = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
  return `convert-${uuid}-${format}`;
}

export function findDerivation(em: EntityManager, sourceSha256: string, format: string, options: Record<string, unknown>) {
  return em.findOne(Derivation, { sourceBlob: sourceSha256, format, optionsKey: optionsKey(options) });
}

/** What a conversion job answers, and what its result in GET /v1/jobs/:id shows. */
export function presentDerivation(derivation: Derivation, size: number) {
  return {
    derivationId: derivation.id,
    sourceSha256: derivation.sourceBlob,
    format: derivation.format,
    sha256: derivation.blob,
    size,
    engine: derivation.engine,
    engineVersion: derivation.engineVersion,
    loss: derivation.loss as LossReport,
  };
}

/** Whether the user owns a version stored as this blob: who may follow a conversion of it. */
export async function userHasBlob(em: EntityManager, userId: string, sha256: string): Promise<boolean> {
  const rows = await em.execute<{ one: number }[]>(
    `select 1 as one from structure_versions v join structures s on s.id = v.structure_id
      where v.blob_sha256 = ? and s.owner_id = ? limit 1`,
    [sha256, userId],
  );
  return rows.length > 0;
}

/**
 * Records that `userId` has received this derivative, so it counts in their usage as derived
 * (once; later downloads change nothing). Returns whether this was their first.
 */
export async function chargeDerivative(em: EntityManager, userId: string, derivationId: string): Promise<boolean> {
  const inserted = await em.execute<{ owner_id: string }[]>(
    `insert into derivation_owners (derivation_id, owner_id, created_at) values (?, ?, now())
     on conflict do nothing returning owner_id`,
    [derivationId, userId],
  );
  if (inserted.length === 0) return false;
  await refreshUsage(em, userId);
  return true;
}
