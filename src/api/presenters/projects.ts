import type { EntityManager } from '@mikro-orm/postgresql';
import type { Project } from '../../entities/Project.js';
import { serializeProject } from '../../entities/serialize.js';
import { projectStats } from '../../services/projects/projects.js';

const EMPTY = { structureCount: 0, usedBytes: 0 };

/** Projects with their structure counts and bytes, in one query whatever the count. */
export async function presentProjects(em: EntityManager, projects: Project[]) {
  const stats = await projectStats(
    em,
    projects.map((p) => p.id),
  );
  return projects.map((p) => ({ ...serializeProject(p, stats.get(p.id) ?? EMPTY), ownerId: p.owner }));
}

export async function presentProject(em: EntityManager, project: Project) {
  const [presented] = await presentProjects(em, [project]);
  return presented;
}
