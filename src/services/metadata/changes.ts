import type { EntityManager } from '@mikro-orm/postgresql';
import { Project } from '../../entities/Project.js';
import { Structure } from '../../entities/Structure.js';
import { type Metadata, metadataProblems } from './metadata.js';
import { applyImport, planImport, type RowError } from './transfer.js';

/** The project's structures (the trash included) whose metadata does not fit `schema`, with why. */
export async function metadataMisfits(em: EntityManager, projectId: string, schema: Record<string, unknown>) {
  const structures = await em.find(Structure, { project: projectId }, { fields: ['id', 'name', 'metadata'] });
  return structures.map((s) => ({ id: s.id, name: s.name, problems: metadataProblems(schema, s.metadata) })).filter((s) => s.problems.length > 0);
}

/** Sets or (null) removes the JSON schema the project's structure metadata must fit. */
export async function setMetadataSchema(em: EntityManager, project: Project, schema: Record<string, unknown> | null): Promise<void> {
  project.metadataSchema = schema;
  await em.flush();
}

/**
 * Applies a whole project's metadata import in one transaction: every row or none. The rows are
 * matched and checked first; when any is invalid nothing changes and the errors say why.
 */
export async function importProjectMetadata(
  em: EntityManager,
  projectId: string,
  rows: { row: number; value: unknown }[],
  projectMetadata: Metadata | undefined,
): Promise<{ ok: true; changed: Structure[] } | { ok: false; errors: RowError[] }> {
  return em.transactional(async (tx) => {
    const project = await tx.findOneOrFail(Project, { id: projectId });
    const plan = await planImport(tx, project, rows);
    if (plan.errors.length > 0) return { ok: false as const, errors: plan.errors };
    const changed = applyImport(plan);
    if (projectMetadata !== undefined) project.metadata = projectMetadata;
    await tx.flush();
    return { ok: true as const, changed };
  });
}

/** Replaces a structure's metadata (already checked against its project's schema); it counts as updated. */
export async function setStructureMetadata(em: EntityManager, structure: Structure, metadata: Metadata): Promise<void> {
  structure.metadata = metadata;
  structure.updatedAt = new Date();
  await em.flush();
}

/** Replaces a project's own metadata. */
export async function setProjectMetadata(em: EntityManager, project: Project, metadata: Metadata): Promise<void> {
  project.metadata = metadata;
  await em.flush();
}
