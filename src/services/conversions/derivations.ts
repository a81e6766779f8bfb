import type { EntityManager } from '@mikro-orm/postgresql';
import type { LossReport } from '../../engines/loss.js';
import { Derivation } from '../../entities/Derivation.js';
import { optionsKey } from '../../queue/keys.js';
import { type Visibility, visibleStructuresSql } from '../auth/visibility.js';
import { refreshUsage } from '../quota/usage.js';

/** The canonical text of conversion options, and the conversion job's id, live with the job contracts. */

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

/**
 * Whether the caller sees a version stored as this blob: who may follow a conversion of it. (Not the
 * same as being charged for the blob, quota's isChargedForBlob: a draft or an export charges too.)
 */
export async function seesVersionOfBlob(em: EntityManager, visible: Visibility, sha256: string): Promise<boolean> {
  const condition = visibleStructuresSql(visible, 's');
  const rows = await em.execute<{ one: number }[]>(
    `select 1 as one from structure_versions v join structures s on s.id = v.structure_id
      where v.blob_sha256 = ? and ${condition.sql} limit 1`,
    [sha256, ...condition.params],
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
