import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * Lowers this process's priority by `by` nice steps (at most to 19). On Linux, where a nice value
 * belongs to a thread, that is the calling (main) thread and libuv's thread pool (fs, zlib, crypto
 * work); threads started later inherit it. Worker threads (the parse threads) lower themselves once
 * their code is loaded. Elsewhere the process as a whole is lowered.
 */
export function lowerPriority(by: number): number {
  const target = Math.min(19, os.getPriority() + by);
  os.setPriority(target);
  if (process.platform !== 'linux') return target;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'libuv-worker') continue;
      os.setPriority(Number(tid), Math.max(os.getPriority(Number(tid)), target));
    } catch {
      // a thread that ended meanwhile
    }
  }
  return target;
}
