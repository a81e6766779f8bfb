import type { EntityManager } from '@mikro-orm/postgresql';
import type { User } from '../../entities/User.js';
import { serializeUser } from '../../services/auth/auth.js';
import { storedUsageOf } from '../../services/quota/report.js';

/** Users as administrators see them: with the usage last stored for each. */
export async function presentUsersForAdmin(em: EntityManager, users: User[]) {
  const usage = await storedUsageOf(
    em,
    users.map((u) => u.id),
  );
  return users.map((u) => {
    const stored = usage.get(u.id);
    return { ...serializeUser(u), usedBytes: stored?.usedBytes ?? 0, usageComputedAt: stored ? stored.computedAt.toISOString() : null };
  });
}
