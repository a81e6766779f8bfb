/** Token scopes: what a token may do on top of its user's roles. */
export const TOKEN_SCOPES = ['read', 'write'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/**
 * What the token of a request was limited to. A token without scopes is its user in full
 * (administration included); one with scopes never administers, and one limited to projects
 * reaches only those.
 */
export interface TokenGrant {
  tokenId: string;
  scopes: readonly TokenScope[] | null;
  projectIds: readonly string[] | null;
}

/** True when the grant lets the token change things (write, and an owner's governance). */
export const grantWrites = (grant: TokenGrant | undefined): boolean => !grant?.scopes || grant.scopes.includes('write');
