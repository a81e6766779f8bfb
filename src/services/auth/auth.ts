import { hash, randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ApiToken } from '../../entities/ApiToken.js';
import { User, type UserRole } from '../../entities/User.js';
import type { TokenGrant, TokenScope } from './grant.js';

export const TOKEN_PREFIX = 'mv_';

export function hashToken(token: string): string {
  return hash('sha256', token);
}

/** Issues a token: returns it once; only its hash is kept. */
export async function createToken(
  em: EntityManager,
  userId: string,
  options: { name?: string; expiresAt?: Date; scopes?: readonly TokenScope[] | null; projectIds?: readonly string[] | null } = {},
) {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const row = em.create(ApiToken, {
    user: userId,
    name: options.name ?? null,
    tokenHash: hashToken(token),
    tokenPrefix: token.slice(0, 10),
    expiresAt: options.expiresAt ?? null,
    revokedAt: null,
    lastUsedAt: null,
    scopes: options.scopes ? [...options.scopes] : null,
    projectIds: options.projectIds ? [...options.projectIds] : null,
  });
  await em.flush();
  return { token, id: row.id, expiresAt: row.expiresAt, row };
}

export async function createUser(em: EntityManager, input: { email: string; name?: string; role?: UserRole; quotaBytes: number }): Promise<User> {
  const user = em.create(User, {
    email: input.email.trim().toLowerCase(),
    name: input.name ?? null,
    role: input.role ?? 'user',
    quotaBytes: input.quotaBytes,
    disabled: false,
  });
  await em.flush();
  return user;
}

/**
 * Recently checked tokens, for a few seconds: every API request authenticates, and two queries per
 * request were a large share of a search's cost. A revocation or a disabled user therefore takes
 * effect within AUTH_CACHE_MS (at once in this process for changes made through its admin routes,
 * which call forgetCachedAuth).
 */
const AUTH_CACHE_MS = 5_000;
const AUTH_CACHE_MAX = 10_000;
const authCache = new Map<string, { user: User; grant: TokenGrant; tokenExpiresAt: number | null; until: number }>();

const activeUserCache = new Map<string, { user: User; until: number }>();

export function forgetCachedAuth(): void {
  authCache.clear();
  activeUserCache.clear();
}

/**
 * The user with this id while they are active (not disabled), cached like a bearer token's user: a
 * signed URL or share link acts on behalf of its maker on every request, and looking the maker up
 * each time made such a download cost more than the same download with a token.
 */
export async function activeUser(em: EntityManager, userId: string): Promise<User | undefined> {
  const now = Date.now();
  const cached = activeUserCache.get(userId);
  if (cached && cached.until > now) return cached.user;
  const user = await em.findOne(User, { id: userId, disabled: false });
  if (!user) {
    activeUserCache.delete(userId);
    return undefined;
  }
  if (activeUserCache.size >= AUTH_CACHE_MAX) activeUserCache.clear();
  activeUserCache.set(userId, { user, until: now + AUTH_CACHE_MS });
  return user;
}

/**
 * The user a bearer token belongs to, with what the token is limited to, or undefined when the token is unknown, expired, revoked or its
 * user disabled. `em` is asked for only when the cache cannot answer (forking one costs more than a
 * cached answer).
 */
export async function authenticate(em: () => EntityManager, token: string): Promise<{ user: User; grant: TokenGrant } | undefined> {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const tokenHash = hashToken(token);
  const now = Date.now();
  const cached = authCache.get(tokenHash);
  if (cached && cached.until > now && (cached.tokenExpiresAt === null || cached.tokenExpiresAt > now)) return cached;
  const found = await authenticateUncached(em(), tokenHash);
  if (!found) {
    authCache.delete(tokenHash);
    return undefined;
  }
  if (authCache.size >= AUTH_CACHE_MAX) authCache.clear();
  authCache.set(tokenHash, { user: found.user, grant: found.grant, tokenExpiresAt: found.expiresAt?.getTime() ?? null, until: now + AUTH_CACHE_MS });
  return found;
}

async function authenticateUncached(em: EntityManager, tokenHash: string): Promise<{ user: User; grant: TokenGrant; expiresAt: Date | null } | undefined> {
  const row = await em.findOne(ApiToken, { tokenHash });
  if (!row || row.revokedAt || (row.expiresAt && row.expiresAt.getTime() < Date.now())) return undefined;
  const user = await em.findOne(User, { id: row.user, disabled: false });
  if (!user) return undefined;
  // Touch at most once a minute: a write per request would be wasted I/O.
  if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > 60_000) {
    await em.nativeUpdate(ApiToken, { id: row.id }, { lastUsedAt: new Date() });
  }
  const grant: TokenGrant = {
    tokenId: row.id,
    scopes: (row.scopes as TokenScope[] | null | undefined) ?? null,
    projectIds: (row.projectIds as string[] | null | undefined) ?? null,
  };
  return { user, grant, expiresAt: row.expiresAt ?? null };
}

export function serializeUser(user: User) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    quotaBytes: user.quotaBytes,
    disabled: user.disabled,
    createdAt: user.createdAt.toISOString(),
  };
}
