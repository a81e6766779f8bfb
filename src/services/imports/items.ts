import type { EntityManager } from '@mikro-orm/postgresql';
import { ImportBatch } from '../../entities/ImportBatch.js';
import { ImportItem } from '../../entities/ImportItem.js';
import { inVisibleProjects, type Visibility } from '../auth/visibility.js';

/** A page of an import's items by position, in some states if given, plus one more when there is a next page. */
export function listImportItems(em: EntityManager, batchId: string, page: { limit: number; states?: ImportItem['state'][]; after?: number }) {
  return em.find(
    ImportItem,
    {
      batch: batchId,
      ...(page.states ? { state: { $in: page.states } } : {}),
      ...(page.after !== undefined ? { position: { $gt: page.after } } : {}),
    },
    { orderBy: { position: 'asc' }, limit: page.limit + 1 },
  );
}

/** A page of the imports the caller started, newest first (into one project, if given), plus one more when there is a next page. */
export function listImportBatches(em: EntityManager, visible: Visibility, page: { limit: number; project?: string; after?: { createdAt: Date; id: string } }) {
  const { after } = page;
  const where = {
    ...inVisibleProjects(visible),
    // Anded with visibility, which may itself be on the project (a project-limited token).
    $and: [
      ...(page.project ? [{ project: page.project }] : []),
      ...(after ? [{ $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, id: { $lt: after.id } }] }] : []),
    ],
  };
  return em.find(ImportBatch, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 });
}
