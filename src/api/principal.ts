import type { User } from '../entities/User.js';
import type { TokenGrant } from '../services/auth/grant.js';

const grants = new WeakMap<object, TokenGrant>();

/**
 * The user a request acts as: a per-request view of the (cached, shared) user that remembers the
 * token's grant. A scoped token of an administrator acts as a plain user: administration needs an
 * unscoped token.
 */
export function actingUser(user: User, grant: TokenGrant): User {
  const acting = Object.create(user, grant.scopes && user.role === 'admin' ? { role: { value: 'user', enumerable: true } } : {}) as User;
  grants.set(acting, grant);
  return acting;
}

/** The grant of the token the request carried (undefined for users made outside a request: tests, the CLI). */
export function grantOf(user: User): TokenGrant | undefined {
  return grants.get(user);
}
