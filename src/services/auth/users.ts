import type { EntityManager } from '@mikro-orm/postgresql';
import { User, type UserRole } from '../../entities/User.js';

/** A page of users by email, after `afterEmail` when given, plus one more when there is a next page. */
export function listUsers(em: EntityManager, page: { limit: number; afterEmail?: string }): Promise<User[]> {
  return em.find(User, page.afterEmail !== undefined ? { email: { $gt: page.afterEmail } } : {}, { orderBy: { email: 'asc' }, limit: page.limit + 1 });
}

export function findUser(em: EntityManager, id: string): Promise<User | null> {
  return em.findOne(User, { id });
}

/** Changes what is given of a user's quota, role and disabled flag. */
export async function changeUser(em: EntityManager, user: User, changes: { quotaBytes?: number; role?: UserRole; disabled?: boolean }): Promise<void> {
  if (changes.quotaBytes !== undefined) user.quotaBytes = changes.quotaBytes;
  if (changes.role !== undefined) user.role = changes.role;
  if (changes.disabled !== undefined) user.disabled = changes.disabled;
  await em.flush();
}
