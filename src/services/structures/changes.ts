import type { EntityManager } from '@mikro-orm/postgresql';
import type { Structure } from '../../entities/Structure.js';

export interface StructureChanges {
  name?: string;
  description?: string;
  tags?: string[];
  /** The whole new metadata, already checked against the project's schema. */
  metadata?: Record<string, unknown>;
}

/** Changes what is given of a structure's name, description, tags and metadata. */
export async function changeStructure(em: EntityManager, structure: Structure, changes: StructureChanges): Promise<void> {
  if (changes.name !== undefined) structure.name = changes.name;
  if (changes.description !== undefined) structure.description = changes.description;
  if (changes.tags !== undefined) structure.tags = changes.tags;
  if (changes.metadata !== undefined) structure.metadata = changes.metadata;
  await em.flush();
}

/** Moves a structure to the trash (it stays there until restored or purged); one already there stays as it is. */
export async function trashStructure(em: EntityManager, structure: Structure): Promise<void> {
  if (structure.deletedAt) return;
  structure.deletedAt = new Date();
  await em.flush();
}

/** Takes a structure out of the trash. */
export async function restoreStructure(em: EntityManager, structure: Structure): Promise<void> {
  structure.deletedAt = null;
  await em.flush();
}
