import type { EntityManager } from '@mikro-orm/postgresql';
import { ApiToken } from '../../entities/ApiToken.js';
import { forgetCachedAuth } from './auth.js';

export interface TokenView {
  id: string;
  name: string | null;
  prefix: string;
  scopes: string[] | null;
  projectIds: string[] | null;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

export const tokenView = (row: ApiToken): TokenView => ({
  id: row.id,
  name: row.name ?? null,
  prefix: row.tokenPrefix,
  scopes: (row.scopes as string[] | null | undefined) ?? null,
  projectIds: (row.projectIds as string[] | null | undefined) ?? null,
  expiresAt: row.expiresAt ?? null,
  lastUsedAt: row.lastUsedAt ?? null,
  revokedAt: row.revokedAt ?? null,
  createdAt: row.createdAt,
});

/** A user's tokens, newest first (never their secrets: only a prefix is kept readable). */
export async function listTokens(em: EntityManager, userId: string): Promise<TokenView[]> {
  return (await em.find(ApiToken, { user: userId }, { orderBy: { createdAt: 'desc', id: 'desc' } })).map(tokenView);
}

/** Revokes one of the user's tokens at once; false when they have no such (live) token. */
export async function revokeToken(em: EntityManager, userId: string, tokenId: string): Promise<boolean> {
  const changed = await em.nativeUpdate(ApiToken, { id: tokenId, user: userId, revokedAt: null }, { revokedAt: new Date() });
  forgetCachedAuth();
  return changed > 0;
}
