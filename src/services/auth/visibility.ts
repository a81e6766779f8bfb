/**
 * What one caller may see, in the terms domain queries filter by. The API's access module
 * (src/api/access.ts) makes it (services/sharing/roles.ts `visibilityFor`); lists, counts and
 * lookups take it rather than a bare user id.
 *
 * A user sees every project they own of record (`allOwn`), and the projects shared with them,
 * directly or through a team (`projectIds`). A token limited to projects sees only those: then
 * `allOwn` is false and `projectIds` lists exactly what it reaches. Rows that belong to a project
 * (structures, uploads, imports) follow their project; structures carry their project's owner of
 * record, so the caller's own part is the owner-led condition every query already had.
 */
export interface Visibility {
  /** The caller. */
  readonly userId: string;
  /** Every project whose owner of record is the caller is visible. */
  readonly allOwn: boolean;
  /** The other visible projects (ids), and who owns each of record. */
  readonly projectIds: readonly string[];
  readonly shared: readonly { projectId: string; ownerId: string }[];
}

/** A user who sees only what they own (no shares, no token limits). */
export const visibilityOf = (userId: string): Visibility => ({ userId, allOwn: true, projectIds: [], shared: [] });

/** Stands for "no project" where a list must not be empty. */
const NO_PROJECT = '00000000-0000-0000-0000-000000000000';

function byProject(visible: Visibility, ownerKey: string, projectKey: string): Record<string, unknown> {
  const ids = visible.projectIds.length > 0 ? [...visible.projectIds] : [NO_PROJECT];
  if (visible.allOwn && visible.projectIds.length === 0) return { [ownerKey]: visible.userId };
  if (visible.allOwn) return { $or: [{ [ownerKey]: visible.userId }, { [projectKey]: { $in: ids } }] };
  return { [projectKey]: { $in: ids } };
}

/** ORM condition on projects. */
export const visibleProjects = (visible: Visibility) => byProject(visible, 'owner', 'id');

/** ORM condition on structures. */
export const visibleStructures = (visible: Visibility) => byProject(visible, 'owner', 'project');

/** ORM condition on rows that belong to a project and are charged to its owner (uploads, imports). */
export const inVisibleProjects = (visible: Visibility) => byProject(visible, 'owner', 'project');

/** ORM condition on rows that are the caller's own (exports they asked for); under a project-limited token, only those of its projects. */
export const startedBy = (visible: Visibility) =>
  visible.allOwn
    ? { owner: visible.userId }
    : { owner: visible.userId, project: { $in: visible.projectIds.length > 0 ? [...visible.projectIds] : [NO_PROJECT] } };

/** SQL condition on a row under `alias` with `owner_id` and `project_id` columns (structures, search documents), with its parameters. */
export function visibleStructuresSql(visible: Visibility, alias: string): { sql: string; params: unknown[] } {
  const ids = `{${(visible.projectIds.length > 0 ? visible.projectIds : [NO_PROJECT]).join(',')}}`;
  if (visible.allOwn && visible.projectIds.length === 0) return { sql: `${alias}.owner_id = ?`, params: [visible.userId] };
  if (visible.allOwn) return { sql: `(${alias}.owner_id = ? or ${alias}.project_id = any(?::uuid[]))`, params: [visible.userId, ids] };
  return { sql: `${alias}.project_id = any(?::uuid[])`, params: [ids] };
}
