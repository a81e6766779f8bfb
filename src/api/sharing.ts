import type { EntityManager } from '@mikro-orm/postgresql';
import { User } from '../entities/User.js';
import { MembershipRefusal } from '../services/sharing/members.js';
import { ApiError } from './errors.js';

/**
 * A user named by email, for sharing: unknown and disabled accounts answer the same 404, which says
 * only that this email cannot be shared with.
 */
export async function userByEmail(em: EntityManager, email: string): Promise<User> {
  const user = await em.findOne(User, { email: email.trim().toLowerCase(), disabled: false });
  if (!user) throw new ApiError(404, 'not_found', `No molvault account with the email ${email} can be added; ask them to get an account first.`);
  return user;
}

/** Runs a membership change, answering its refusals with 409. */
export async function membershipChange<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (error instanceof MembershipRefusal) throw new ApiError(409, error.code, error.message);
    throw error;
  }
}
