import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Structure } from '../../entities/Structure.js';
import { StructureVersion } from '../../entities/StructureVersion.js';
import { lockBlob } from '../quota/blobs.js';

export type RollbackOutcome =
  | { ok: true; version: StructureVersion }
  | { ok: false; reason: 'structure_not_found' | 'version_not_found' }
  | { ok: false; reason: 'already_current'; number: number };

/**
 * Makes a new version whose content is an earlier version's: same blob, next number, a message
 * saying so. History is never rewritten. Numbered under the structure's row lock, like snapshot,
 * with the blob lock taken first (the order snapshot, prune and purge use), so a concurrent prune
 * cannot delete the bytes the new version is about to refer to.
 */
export async function rollbackStructure(
  em: EntityManager,
  input: { structureId: string; ownerId: string; authorId: string; number: number; message?: string },
): Promise<RollbackOutcome> {
  return em.transactional(async (tx) => {
    const target = await tx.findOne(StructureVersion, { structure: input.structureId, number: input.number });
    if (!target) return { ok: false, reason: 'version_not_found' };
    await lockBlob(tx, target.blob);
    const structure = await tx.findOne(Structure, { id: input.structureId, owner: input.ownerId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!structure || structure.deletedAt) return { ok: false, reason: 'structure_not_found' };
    // Pruned between the first look and the lock?
    if (!(await tx.findOne(StructureVersion, { id: target.id }, { refresh: true }))) return { ok: false, reason: 'version_not_found' };
    if (structure.currentVersion === target.id) return { ok: false, reason: 'already_current', number: target.number };
    const [last] = await tx.execute<{ n: number | null }[]>('select max(number) as n from structure_versions where structure_id = ?', [structure.id]);
    const note = `Rolled back to version ${target.number}`;
    const version = tx.create(StructureVersion, {
      structure: structure.id,
      number: (last?.n ?? 0) + 1,
      blob: target.blob,
      format: target.format,
      filename: target.filename,
      message: input.message ? `${note}: ${input.message}` : note,
      author: input.authorId,
      summary: target.summary,
      validation: target.validation,
      pinned: false,
      upload: null,
    });
    await tx.flush();
    structure.currentVersion = version.id;
    structure.updatedAt = new Date();
    await tx.flush();
    return { ok: true, version };
  });
}

/** Pins or unpins a version; pinned versions are never pruned. */
export async function setPinned(em: EntityManager, structureId: string, number: number, pinned: boolean): Promise<StructureVersion | undefined> {
  const changed = await em.nativeUpdate(StructureVersion, { structure: structureId, number }, { pinned });
  if (changed === 0) return undefined;
  return (await em.findOne(StructureVersion, { structure: structureId, number }, { refresh: true })) ?? undefined;
}
