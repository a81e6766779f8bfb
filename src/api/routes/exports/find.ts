import type { EntityManager } from '@mikro-orm/postgresql';
import { ExportArchive } from '../../../entities/ExportArchive.js';
import { notFound } from '../../errors.js';

/** The user's export; another user's answers 404 like a missing one. */
export async function findOwnExport(em: EntityManager, userId: string, id: string): Promise<ExportArchive> {
  const row = await em.findOne(ExportArchive, { id, owner: userId });
  if (!row) throw notFound('export');
  return row;
}
