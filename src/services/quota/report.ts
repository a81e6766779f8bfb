import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';

/** Bytes a user's uploads, imports and drafts in progress hold against the quota (not yet in their usage). */
export async function reservedBytes(em: EntityManager, userId: string): Promise<number> {
  const [row] = await em.execute<{ n: string | null }[]>('select sum(bytes) as n from quota_reservations where owner_id = ?', [userId]);
  return Number(row?.n ?? 0);
}

/** The usage last stored for each of these users (users never measured are absent). */
export async function storedUsageOf(em: EntityManager, userIds: string[]): Promise<Map<string, { usedBytes: number; computedAt: Date }>> {
  if (userIds.length === 0) return new Map();
  const rows = await em.execute<{ user_id: string; used_bytes: string; computed_at: Date }[]>(
    'select user_id, used_bytes, computed_at from user_usage where user_id = any(?::uuid[])',
    [sqlArray(userIds)],
  );
  return new Map(rows.map((r) => [r.user_id, { usedBytes: Number(r.used_bytes), computedAt: new Date(r.computed_at) }]));
}
