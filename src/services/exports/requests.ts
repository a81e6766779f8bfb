import type { EntityManager } from '@mikro-orm/postgresql';
import { type ArchiveKind, ExportArchive, type ExportState } from '../../entities/ExportArchive.js';
import { startedBy, type Visibility } from '../auth/visibility.js';

/** A page of the caller's exports, newest first (in one state, if given), plus one more row when there is a next page. */
export function listExports(em: EntityManager, visible: Visibility, page: { limit: number; state?: ExportState; before?: { createdAt: Date; id: string } }) {
  const where: Record<string, unknown> = { ...startedBy(visible) };
  if (page.state) where.state = page.state;
  if (page.before) {
    const at = page.before.createdAt;
    where.$or = [{ createdAt: { $lt: at } }, { createdAt: at, id: { $lt: page.before.id } }];
  }
  return em.find(ExportArchive, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 });
}

/** Records an export to be written (pending); the export job writes it. */
export async function recordExport(
  em: EntityManager,
  input: Pick<ExportArchive, 'owner' | 'project' | 'selection' | 'format' | 'versions' | 'filename' | 'expiresAt'> & { archive: ArchiveKind },
): Promise<ExportArchive> {
  const row = em.create(ExportArchive, input);
  await em.flush();
  return row;
}

/** The export, read afresh. */
export function findExport(em: EntityManager, exportId: string): Promise<ExportArchive | null> {
  return em.findOne(ExportArchive, { id: exportId });
}
