import { z } from 'zod';
import { parseDuration } from '../../config/index.js';
import { ApiError } from '../errors.js';

/**
 * How long a signed URL or share link lives: seconds (3600), or a duration ("90m", "12h", "7d").
 * `never` (or null) is accepted here and refused later unless the server allows links that never expire.
 */
export const expiresInSchema = z
  .union([z.number().int().positive(), z.string().trim().min(1).max(20), z.null()])
  .optional()
  .transform((value, ctx): number | 'never' | undefined => {
    if (value === undefined) return undefined;
    if (value === null || value === 'never') return 'never';
    if (typeof value === 'number') return value * 1000;
    const ms = /^\d+$/.test(value) ? Number(value) * 1000 : parseDuration(value);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a lifetime: give seconds (3600) or a duration such as 90m, 12h or 7d` });
      return z.NEVER;
    }
    return ms;
  });

/** "7 days", "12 hours", "90 minutes": a lifetime as a sentence says it. */
export function lifetimeInWords(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms / size === 1 ? '' : 's'}`;
  }
  return `${Math.round(ms / 1000)} seconds`;
}

/** Refuses a lifetime past the server's maximum (400 lifetime_too_long), naming the setting that sets it. */
export function refuseLongerThan(ttl: number, max: number, what: string, setting: string): void {
  if (ttl <= max) return;
  throw new ApiError(400, 'lifetime_too_long', `${what} lives at most ${lifetimeInWords(max)} here (${setting}); ask for a shorter expiresIn.`, {
    maxSeconds: Math.floor(max / 1000),
  });
}
