import type { Redis } from 'ioredis';

/** Wrong passwords one IP may try on one link within the window before it must wait. */
export const LINK_PASSWORD_ATTEMPTS = 5;
export const LINK_PASSWORD_WINDOW_SECONDS = 15 * 60;

const key = (prefix: string, linkId: string, ip: string) => `${prefix}:linkpw:${linkId}:${ip}`;

/**
 * Wrong link passwords per link and IP, counted in Redis (shared by every API process) over a fixed
 * window that starts with the first wrong one. Returns the seconds left to wait, or 0.
 */
export async function passwordLockout(redis: Redis, prefix: string, linkId: string, ip: string): Promise<number> {
  const k = key(prefix, linkId, ip);
  const [count, ttl] = await Promise.all([redis.get(k), redis.ttl(k)]);
  if (Number(count ?? 0) < LINK_PASSWORD_ATTEMPTS) return 0;
  return ttl > 0 ? ttl : LINK_PASSWORD_WINDOW_SECONDS;
}

/** Counts a wrong password; the window starts with the first. */
export async function countWrongPassword(redis: Redis, prefix: string, linkId: string, ip: string): Promise<void> {
  const k = key(prefix, linkId, ip);
  await redis.multi().incr(k).expire(k, LINK_PASSWORD_WINDOW_SECONDS, 'NX').exec();
}
