import type { EntityManager } from '@mikro-orm/postgresql';
import { Structure, type StructureKind } from '../../entities/Structure.js';
import { type Visibility, visibleStructures } from '../auth/visibility.js';

export type StructureOrder = 'createdAt' | 'updatedAt' | 'name';

export interface StructureFilters {
  project?: string;
  kind?: StructureKind;
  /** Structures carrying every one of these tags. */
  tags: string[];
  /** A part of the name, any case. */
  nameContains?: string;
  /** The current version's format. */
  format?: string;
  trashed: boolean;
}

/** A keyset page: rows after the last one shown (its sort value and id), so inserts and deletes never shift a page. */
export interface KeysetPage<A> {
  limit: number;
  after?: A;
}

/** A page of the structures the caller may see, plus one more row when there is a next page. */
export async function listStructures(
  em: EntityManager,
  visible: Visibility,
  filters: StructureFilters,
  order: { field: StructureOrder; direction: 'asc' | 'desc' },
  page: KeysetPage<{ value: string | Date; id: string }>,
): Promise<Structure[]> {
  const where: Record<string, unknown> = { ...visibleStructures(visible), deletedAt: filters.trashed ? { $ne: null } : null };
  // Anded, not assigned: the visibility condition may itself be on the project (a project-limited token).
  if (filters.project) where.$and = [{ project: filters.project }];
  if (filters.kind) where.kind = filters.kind;
  if (filters.tags.length) where.tags = { $contains: filters.tags };
  if (filters.nameContains) where.name = { $ilike: `%${filters.nameContains.replace(/[%_\\]/g, '\\$&')}%` };
  if (filters.format) where.currentVersion = { format: filters.format };
  if (page.after) {
    const beyond = order.direction === 'desc' ? '$lt' : '$gt';
    const { value, id } = page.after;
    where.$and = [...((where.$and as unknown[]) ?? []), { $or: [{ [order.field]: { [beyond]: value } }, { [order.field]: value, id: { [beyond]: id } }] }];
  }
  return em.find(Structure, where, { orderBy: { [order.field]: order.direction, id: order.direction }, limit: page.limit + 1 });
}

/** A page of the trash the caller may see, most recently deleted first, plus one more row when there is a next page. */
export async function listTrash(em: EntityManager, visible: Visibility, project: string | undefined, page: KeysetPage<{ deletedAt: Date; id: string }>) {
  const where: Record<string, unknown> = { ...visibleStructures(visible), deletedAt: { $ne: null } };
  if (project) where.$and = [{ project }];
  if (page.after) {
    const at = page.after.deletedAt;
    where.$or = [{ deletedAt: { $lt: at } }, { deletedAt: at, id: { $lt: page.after.id } }];
  }
  return em.find(Structure, where, { orderBy: { deletedAt: 'desc', id: 'desc' }, limit: page.limit + 1 });
}
