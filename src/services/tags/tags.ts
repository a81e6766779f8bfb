import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Structure } from '../../entities/Structure.js';
import { type Visibility, visibleStructuresSql } from '../auth/visibility.js';

/** Tags on the live structures the caller may see (in one project, if given), with how many carry each, most used first. */
export async function tagCounts(em: EntityManager, visible: Visibility, projectId?: string): Promise<{ tag: string; count: number }[]> {
  const condition = visibleStructuresSql(visible, 's');
  const rows = await em.execute<{ tag: string; count: string }[]>(
    `select t.tag, count(*) as count
       from structures s cross join lateral unnest(s.tags) as t(tag)
      where ${condition.sql} and s.deleted_at is null ${projectId ? 'and s.project_id = ?' : ''}
      group by t.tag order by count(*) desc, t.tag asc`,
    projectId ? [...condition.params, projectId] : condition.params,
  );
  return rows.map((r) => ({ tag: r.tag, count: Number(r.count) }));
}

/** Rewrites the tags of every structure in a project that carries `tag` (rows locked), returning those changed. */
export async function retagProject(em: EntityManager, projectId: string, tag: string, rewrite: (tags: string[]) => string[]): Promise<Structure[]> {
  return em.transactional(async (tx) => {
    const structures = await tx.find(Structure, { project: projectId, tags: { $contains: [tag] } }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    for (const structure of structures) {
      structure.tags = rewrite(structure.tags);
      structure.updatedAt = new Date();
    }
    await tx.flush();
    return structures;
  });
}

/** Sets a structure's tags (it changed them, so it counts as updated). */
export async function setStructureTags(em: EntityManager, structure: Structure, tags: string[]): Promise<void> {
  structure.tags = tags;
  structure.updatedAt = new Date();
  await em.flush();
}
