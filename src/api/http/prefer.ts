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
