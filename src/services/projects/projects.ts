import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { Project } from '../../entities/Project.js';
import { ProjectMember } from '../../entities/ProjectMember.js';
import { type Visibility, visibleProjects } from '../auth/visibility.js';

export interface ProjectStats {
  structureCount: number;
  usedBytes: number;
}

/** Structure counts and bytes per project: distinct blobs of all versions of its live structures. */
export async function projectStats(em: EntityManager, ids: string[]): Promise<Map<string, ProjectStats>> {
  if (ids.length === 0) return new Map();
  const rows = await em.execute<{ project_id: string; structures: string; bytes: string | null }[]>(
    `select p.id as project_id,
            (select count(*) from structures s where s.project_id = p.id and s.deleted_at is null) as structures,
            (select sum(b.size) from blobs b where b.sha256 in (
               select v.blob_sha256 from structure_versions v join structures s on s.id = v.structure_id where s.project_id = p.id)) as bytes
     from projects p where p.id = any(?::uuid[])`,
    [sqlArray(ids)],
  );
  return new Map(rows.map((r) => [r.project_id, { structureCount: Number(r.structures), usedBytes: Number(r.bytes ?? 0) }]));
}

/** A page of the projects the caller may see, newest first, plus one more row when there is a next page. */
export function listProjects(em: EntityManager, visible: Visibility, page: { limit: number; after?: { createdAt: Date; id: string } }): Promise<Project[]> {
  const { after } = page;
  // Conditions are and-ed, never spread: the visibility may itself be an $or (own or shared projects).
  const where = after
    ? { $and: [visibleProjects(visible), { $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, id: { $lt: after.id } }] }] }
    : visibleProjects(visible);
  return em.find(Project, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 });
}

/** Flushes a new or renamed project; false when its owner already has a project of that name. */
export async function saveProject(em: EntityManager): Promise<boolean> {
  try {
    await em.flush();
    return true;
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) return false;
    throw error;
  }
}

/** Structures in the project, the trash included. */
export async function structureCount(em: EntityManager, projectId: string): Promise<number> {
  const [row] = await em.execute<{ n: string }[]>('select count(*) as n from structures where project_id = ?', [projectId]);
  return Number(row?.n ?? 0);
}

/** Deletes a project (its owner checked it is empty). */
export async function deleteProject(em: EntityManager, projectId: string): Promise<void> {
  await em.nativeDelete(Project, { id: projectId });
}

/** The name of a project, if it exists. */
export async function findProjectName(em: EntityManager, projectId: string): Promise<string | undefined> {
  const [row] = await em.execute<{ name: string }[]>('select name from projects where id = ?', [projectId]);
  return row?.name;
}

export interface ProjectFields {
  name?: string;
  description?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
  /** Version retention; null turns a rule off. */
  pruning?: { keepLast?: number | null; keepDays?: number | null };
}

/** A new project of `ownerId`; undefined when they already have a project of that name. */
export async function createProject(em: EntityManager, ownerId: string, fields: ProjectFields & { name: string }): Promise<Project | undefined> {
  const project = em.create(Project, {
    owner: ownerId,
    name: fields.name,
    description: fields.description ?? '',
    tags: fields.tags ?? [],
    metadata: fields.metadata ?? {},
    pruneKeepLast: fields.pruning?.keepLast ?? null,
    pruneKeepDays: fields.pruning?.keepDays ?? null,
  });
  // Its creator is its first owner member (and its owner of record, charged for what it stores).
  em.create(ProjectMember, { project: project.id, user: ownerId, team: null, role: 'owner' });
  return (await saveProject(em)) ? project : undefined;
}

/**
 * Changes what is given of a project (its metadata replaced by the whole new object); false when
 * the new name is one its owner already uses.
 */
export async function changeProject(em: EntityManager, project: Project, fields: ProjectFields): Promise<boolean> {
  if (fields.name !== undefined) project.name = fields.name;
  if (fields.description !== undefined) project.description = fields.description;
  if (fields.tags !== undefined) project.tags = fields.tags;
  if (fields.metadata !== undefined) project.metadata = fields.metadata;
  if (fields.pruning?.keepLast !== undefined) project.pruneKeepLast = fields.pruning.keepLast;
  if (fields.pruning?.keepDays !== undefined) project.pruneKeepDays = fields.pruning.keepDays;
  return saveProject(em);
}
