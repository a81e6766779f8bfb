/**
 * Runs `work` over `items`, at most `limit` at once. By default the first failure stops new starts
 * and is thrown once the running ones end; with `attemptAll`, every item is still attempted and
 * the first failure is thrown after them all.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<unknown>,
  options: { attemptAll?: boolean } = {},
): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const lane = async () => {
    while (next < items.length && (options.attemptAll || failures.length === 0)) {
      const item = items[next++] as T;
      await work(item).catch((error: unknown) => failures.push(error));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failures.length > 0) throw failures[0];
}
