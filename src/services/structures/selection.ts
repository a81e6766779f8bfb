import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { type Visibility, visibleStructuresSql } from '../auth/visibility.js';

export interface SelectedStructure {
  id: string;
  projectId: string;
  deletedAt: Date | null;
}

/** Those of these structures the caller may see (the trash included), in one query. */
export async function visibleSelection(em: EntityManager, visible: Visibility, ids: string[]): Promise<SelectedStructure[]> {
  const condition = visibleStructuresSql(visible, 's');
  const rows = await em.execute<{ id: string; project_id: string; deleted_at: Date | null }[]>(
    `select s.id, s.project_id, s.deleted_at from structures s where ${condition.sql} and s.id = any(?::uuid[])`,
    [...condition.params, sqlArray(ids)],
  );
  return rows.map((r) => ({ id: r.id, projectId: r.project_id, deletedAt: r.deleted_at }));
}
