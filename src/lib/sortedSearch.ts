/**
 * The last index i ≤ `last` whose `sorted[i]` ≤ `value`, in an ascending array that starts at or
 * below `value`: which run holds a position, when `sorted` lists the runs' first positions (chains'
 * first atoms, runs' first indices).
 */
export function runAt(sorted: ArrayLike<number>, value: number, last = sorted.length - 1): number {
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sorted[mid] <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
