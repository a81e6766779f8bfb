import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { ExportArchive } from '../entities/ExportArchive.js';
import { ImportBatch } from '../entities/ImportBatch.js';
import { Project } from '../entities/Project.js';
import type { ProjectRole } from '../entities/ProjectMember.js';
import { Structure } from '../entities/Structure.js';
import { Upload } from '../entities/Upload.js';
import type { User } from '../entities/User.js';
import { jobNameFromId } from '../queue/contract.js';
import { convertJob, jobContractNamed } from '../queue/jobs.js';
import type { QueueSet } from '../queue/queues.js';
import { grantWrites, type TokenGrant } from '../services/auth/grant.js';
import { inVisibleProjects, startedBy, type Visibility } from '../services/auth/visibility.js';
import { seesVersionOfBlob } from '../services/conversions/derivations.js';
import { recoverRequestedJob } from '../services/maintenance/workRequests.js';
import { projectRank, rankRole, roleRank, visibilityFor } from '../services/sharing/roles.js';
import { viewStructureJson } from '../services/structures/counters.js';
import { type SelectedStructure, visibleSelection } from '../services/structures/selection.js';
import { ApiError, notFound } from './errors.js';
import { grantOf } from './principal.js';

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
 * Roles: a user sees the projects they own of record and those they are a member of, directly or
 * through a team; their effective role in one is the highest of those (the owner of record is an
 * owner). {@link Access.allow} refuses with 403, naming the role needed, what a member's role is
 * too low for, and what a read-only token would change; a non-member gets 404. A token limited to
 * projects sees nothing else (404).
 */
export class Access {
  private readonly grant: TokenGrant | undefined;
  private visibility?: Promise<Visibility>;
  private readonly ranks = new Map<string, number>();

  constructor(
    private readonly em: EntityManager,
    readonly user: User,
  ) {
    this.grant = grantOf(user);
  }

  /** What this caller may see, for the queries of lists, counts and searches (looked up once). */
  visible(): Promise<Visibility> {
    this.visibility ??= visibilityFor(this.em, this.user.id, this.grant);
    return this.visibility;
  }

  /** The project, if the caller may see it and do `need` with it. */
  async project(id: string, need: Permission): Promise<Project> {
    const project = await this.em.findOne(Project, { id });
    if (!project) throw notFound('project');
    await this.allow(need, project.id, project.owner, 'project');
    return project;
  }

  /** The caller's effective role in a project they may see (404 otherwise). */
  async roleIn(projectId: string, ownerId?: string): Promise<ProjectRole> {
    const rank = await this.rank(projectId, ownerId);
    const role = rankRole(rank);
    if (!role) throw notFound('project');
    return role;
  }

  /** The structure, if the caller may see it and do `need` with it; one in the trash only when `trashed` says so. */
  async structure(id: string, need: Permission, options: { trashed?: boolean } = {}): Promise<Structure> {
    const structure = await this.em.findOne(Structure, { id });
    if (!structure) throw notFound('structure');
    await this.allow(need, structure.project, structure.owner, 'structure');
    if (structure.deletedAt && !options.trashed) throw notFound('structure');
    return structure;
  }

  /** The structure as the API shows it (JSON text built by Postgres), its view counted, in one statement. */
  async viewStructure(id: string): Promise<string> {
    const json = await viewStructureJson(this.em, await this.visible(), id);
    if (json === undefined) throw notFound('structure');
    return json;
  }

  /** Every one of these structures (the trash included), or 404 listing those the caller cannot see. */
  async structures(ids: string[], need: Permission): Promise<SelectedStructure[]> {
    const rows = await visibleSelection(this.em, await this.visible(), ids);
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
    for (const projectId of new Set(rows.map((r) => r.projectId))) await this.allow(need, projectId, undefined, 'structure');
    return rows;
  }

  /** An upload into a project the caller may see. */
  async upload(id: string): Promise<Upload> {
    const upload = await this.em.findOne(Upload, { id, ...inVisibleProjects(await this.visible()) });
    if (!upload) throw notFound('upload');
    return upload;
  }

  /** An import into a project the caller may see. */
  async importBatch(id: string): Promise<ImportBatch> {
    const batch = await this.em.findOne(ImportBatch, { id, ...inVisibleProjects(await this.visible()) });
    if (!batch) throw notFound('import');
    return batch;
  }

  /** An export the caller asked for. */
  async exportArchive(id: string): Promise<ExportArchive> {
    const row = await this.em.findOne(ExportArchive, { id, ...startedBy(await this.visible()) });
    if (!row) throw notFound('export');
    return row;
  }

  /**
   * A job the caller may follow: one about an upload or import in a project they may see, an
   * export they asked for, or a conversion of a file in a structure they may see (one conversion
   * serves everyone who stores its source). Administrators (unscoped tokens) follow the jobs that
   * are about no project (backups, maintenance).
   */
  async job(queues: QueueSet, id: string): Promise<Job> {
    const definition = jobContractNamed(jobNameFromId(id));
    // A conversion or diff a client still waits for outlives a Redis that lost its job: added back here.
    const job = definition ? ((await queues[definition.queue].getJob(id)) ?? (await recoverRequestedJob(queues, this.em, id))) : undefined;
    if (!job || !(await this.mayFollow(job))) throw notFound('job');
    return job;
  }

  private async mayFollow(job: Job): Promise<boolean> {
    const data = job.data as { ownerId?: string; uploadId?: string; batchId?: string; exportId?: string; sourceSha256?: string };
    // Administrators follow the jobs about no one's project (backups, maintenance); a project's jobs only as its members.
    const aboutData = data.exportId || data.uploadId || data.batchId || data.sourceSha256 || data.ownerId;
    if (this.user.role === 'admin' && !aboutData) return true;
    const visible = await this.visible();
    if (data.exportId) return (await this.em.count(ExportArchive, { id: data.exportId, ...startedBy(visible) })) > 0;
    if (data.uploadId) return (await this.em.count(Upload, { id: data.uploadId, ...inVisibleProjects(visible) })) > 0;
    if (data.batchId) return (await this.em.count(ImportBatch, { id: data.batchId, ...inVisibleProjects(visible) })) > 0;
    if (job.name === convertJob.name && data.sourceSha256) return seesVersionOfBlob(this.em, visible, data.sourceSha256);
    return visible.allOwn && data.ownerId === this.user.id;
  }

  private async rank(projectId: string, ownerId?: string): Promise<number> {
    if (this.grant?.projectIds && !this.grant.projectIds.includes(projectId)) return 0;
    let rank = this.ranks.get(projectId);
    if (rank === undefined) {
      rank = await projectRank(this.em, this.user.id, projectId, ownerId);
      this.ranks.set(projectId, rank);
    }
    return rank;
  }

  /**
   * Refuses what the caller may not do in this project: 404 when they have no role there (or their
   * token does not reach it), 403 naming the role needed when theirs is too low, 403 when their
   * token may only read.
   */
  private async allow(need: Permission, projectId: string, ownerId: string | undefined, what: string): Promise<void> {
    const rank = await this.rank(projectId, ownerId);
    if (rank === 0) throw notFound(what);
    const needed = NEEDED_ROLE[need];
    if (rank < roleRank(needed)) {
      throw new ApiError(
        403,
        'forbidden',
        `This needs the ${needed} role in the project (${PERMISSION_WORDS[need]}); you are ${article(rankRole(rank) as ProjectRole)} there.`,
        { needed, role: rankRole(rank) },
      );
    }
    if (need !== 'read' && !grantWrites(this.grant)) {
      throw new ApiError(403, 'forbidden', 'This token may only read; use a token with the "write" scope to change anything.', { needed: 'write' });
    }
  }
}

/** The lowest project role that has each permission. */
const NEEDED_ROLE: Record<Permission, ProjectRole> = { read: 'viewer', write: 'editor', own: 'owner' };
const PERMISSION_WORDS: Record<Permission, string> = {
  read: 'to see it',
  write: 'to change what it holds',
  own: 'to govern it: members, links, purges, its policies and the audit log',
};
const article = (role: ProjectRole) => (role === 'owner' || role === 'editor' ? `an ${role}` : `a ${role}`);

/** Administrators only (the users, storage and backup endpoints, the queue console), with an unscoped token. */
export function requireAdministrator(user: User | undefined): void {
  if (user?.role !== 'admin') throw new ApiError(403, 'forbidden', 'Only administrators may use this endpoint, with a token that has no scopes.');
}

/** What this caller may see, for the queries of lists, counts and searches. */
export function visibleTo(em: EntityManager, user: User): Promise<Visibility> {
  return access(em, user).visible();
}

/** Refuses a change made with a read-only token (routes about the caller's own account: teams, tokens, projects they create). */
export function requireWriteScope(user: User): void {
  if (!grantWrites(grantOf(user))) {
    throw new ApiError(403, 'forbidden', 'This token may only read; use a token with the "write" scope to change anything.', { needed: 'write' });
  }
}

/** The caller's access, looked up through this entity manager. */
export function access(em: EntityManager, user: User): Access {
  return new Access(em, user);
}
