import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { ExportArchive } from '../entities/ExportArchive.js';
import { ImportBatch } from '../entities/ImportBatch.js';
import { Project } from '../entities/Project.js';
import { Structure } from '../entities/Structure.js';
import { Upload } from '../entities/Upload.js';
import type { User } from '../entities/User.js';
import { jobNameFromId } from '../queue/contract.js';
import { convertJob, jobContractNamed } from '../queue/jobs.js';
import type { QueueSet } from '../queue/queues.js';
import { startedBy, type Visibility, visibilityOf, visibleProjects, visibleStructures } from '../services/auth/visibility.js';
import { ownsVersionOfBlob } from '../services/conversions/derivations.js';
import { viewStructureJson } from '../services/structures/counters.js';
import { type SelectedStructure, visibleSelection } from '../services/structures/selection.js';
import { ApiError, notFound } from './errors.js';

/**
 * What a route is about to do with a project or a structure in it.
 * - read: see it, download and convert it, compare versions, search it.
 * - write: change what it holds: uploads and versions, drafts, metadata, tags, relationships,
 *   rollback, pins, trash and restore, imports and exports.
 * - own: govern the project: delete it, purge structures for good, its pruning policy and
 *   metadata schema.
 */
export type Permission = 'read' | 'write' | 'own';

/**
 * The one way a route finds what it acts on: "the project or structure this caller may see, or
 * 404", and for lists, the Visibility their queries filter by. Something the caller may not see
 * answers exactly like something that does not exist, so ids reveal nothing.
 *
 * Today a user sees and may do everything with what they own, and nothing else (administrators
 * also follow every job). Project roles plug in here: `visible` widens to the projects a user is a
 * member of, and {@link Access.allow} refuses with 403, naming the role needed, what a member's
 * role is too low for; a non-member still gets 404.
 */
export class Access {
  readonly visible: Visibility;

  constructor(
    private readonly em: EntityManager,
    readonly user: User,
  ) {
    this.visible = visibleTo(user);
  }

  /** The project, if the caller may see it and do `need` with it. */
  async project(id: string, need: Permission): Promise<Project> {
    const project = await this.em.findOne(Project, { id, ...visibleProjects(this.visible) });
    if (!project) throw notFound('project');
    this.allow(need, project.id);
    return project;
  }

  /** The structure, if the caller may see it and do `need` with it; one in the trash only when `trashed` says so. */
  async structure(id: string, need: Permission, options: { trashed?: boolean } = {}): Promise<Structure> {
    const structure = await this.em.findOne(Structure, { id, ...visibleStructures(this.visible) });
    if (!structure || (structure.deletedAt && !options.trashed)) throw notFound('structure');
    this.allow(need, structure.project);
    return structure;
  }

  /** The structure as the API shows it (JSON text built by Postgres), its view counted, in one statement. */
  async viewStructure(id: string): Promise<string> {
    const json = await viewStructureJson(this.em, this.visible, id);
    if (json === undefined) throw notFound('structure');
    return json;
  }

  /** Every one of these structures (the trash included), or 404 listing those the caller cannot see. */
  async structures(ids: string[], need: Permission): Promise<SelectedStructure[]> {
    const rows = await visibleSelection(this.em, this.visible, ids);
    const found = new Set(rows.map((r) => r.id));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) {
      throw new ApiError(
        404,
        'not_found',
        `No structure with ${missing.length === 1 ? 'the id' : 'the ids'} ${missing.slice(0, 10).join(', ')} exists, or it is not yours.`,
        { missing },
      );
    }
    for (const projectId of new Set(rows.map((r) => r.projectId))) this.allow(need, projectId);
    return rows;
  }

  /** An upload the caller started. */
  async upload(id: string): Promise<Upload> {
    const upload = await this.em.findOne(Upload, { id, ...startedBy(this.visible) });
    if (!upload) throw notFound('upload');
    return upload;
  }

  /** An import the caller started. */
  async importBatch(id: string): Promise<ImportBatch> {
    const batch = await this.em.findOne(ImportBatch, { id, ...startedBy(this.visible) });
    if (!batch) throw notFound('import');
    return batch;
  }

  /** An export the caller asked for. */
  async exportArchive(id: string): Promise<ExportArchive> {
    const row = await this.em.findOne(ExportArchive, { id, ...startedBy(this.visible) });
    if (!row) throw notFound('export');
    return row;
  }

  /**
   * A job the caller may follow: one they started, or a conversion of a file they store (one
   * conversion serves everyone who stores its source). Administrators follow every job.
   */
  async job(queues: QueueSet, id: string): Promise<Job> {
    const definition = jobContractNamed(jobNameFromId(id));
    const job = definition ? await queues[definition.queue].getJob(id) : undefined;
    if (!job || !(await this.mayFollow(job))) throw notFound('job');
    return job;
  }

  private async mayFollow(job: Job): Promise<boolean> {
    if (this.user.role === 'admin' || (job.data as { ownerId?: string }).ownerId === this.user.id) return true;
    const source = (job.data as { sourceSha256?: string }).sourceSha256;
    return job.name === convertJob.name && !!source && (await ownsVersionOfBlob(this.em, this.user.id, source));
  }

  /**
   * Where a role too low for `need` will be refused (403, naming the role it takes). Today whoever
   * sees a project owns it, so everything visible is allowed.
   */
  private allow(_need: Permission, _projectId: string): void {}
}

/** Administrators only (the users, storage and backup endpoints, the queue console). */
export function requireAdministrator(user: User | undefined): void {
  if (user?.role !== 'admin') throw new ApiError(403, 'forbidden', 'Only administrators may use this endpoint.');
}

/** What this caller may see, for the queries of lists, counts and searches. */
export function visibleTo(user: User): Visibility {
  return visibilityOf(user.id);
}

/** The caller's access, looked up through this entity manager. */
export function access(em: EntityManager, user: User): Access {
  return new Access(em, user);
}
