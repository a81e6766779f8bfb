import { z } from 'zod';
import { ApiError } from './errors.js';

export const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
});

export const tagsSchema = z.array(z.string().trim().min(1).max(100)).max(100);
export const metadataSchema = z.record(z.string(), z.unknown());

/** Opaque cursors: base64url JSON of the last row's sort key. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (!cursor) return undefined;
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new ApiError(400, 'invalid_cursor', 'The cursor is not one this server issued; start again without it.');
  }
}

/** `Prefer: wait=N` → N seconds (at most 60), or 0. */
export function preferWaitSeconds(header: string | undefined): number {
  const match = /(?:^|[,;\s])wait=(\d+)/i.exec(header ?? '');
  return match ? Math.min(60, Number(match[1])) : 0;
}

/** Runs `check` until it returns a value or the deadline passes, sleeping with `pause` in between. */
export async function waitFor<T>(seconds: number, check: () => Promise<T | undefined>, pause: (ms: number) => Promise<void>): Promise<T | undefined> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await pause(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
}
