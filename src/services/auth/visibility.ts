/**
 * What one caller may see, in the terms domain queries filter by. The API's access module
 * (src/api/access.ts) makes it; lists, counts and lookups take it rather than a bare user id.
 *
 * Today a user sees exactly the rows they own. Shared projects will widen this to the projects a
 * user is a member of (directly or through a team): the conditions below are where that happens,
 * so every list, count and search that takes a Visibility follows without changing its callers.
 */
export interface Visibility {
  /** The caller. */
  readonly userId: string;
}

export const visibilityOf = (userId: string): Visibility => ({ userId });

/** ORM condition on projects. */
export const visibleProjects = (visible: Visibility) => ({ owner: visible.userId });

/** ORM condition on structures. */
export const visibleStructures = (visible: Visibility) => ({ owner: visible.userId });

/** ORM condition on rows a user started (uploads, imports, exports, relationships): each is their starter's. */
export const startedBy = (visible: Visibility) => ({ owner: visible.userId });

/** SQL condition on a `structures` row under `alias`, with its parameters. */
export function visibleStructuresSql(visible: Visibility, alias: string): { sql: string; params: unknown[] } {
  return { sql: `${alias}.owner_id = ?`, params: [visible.userId] };
}
