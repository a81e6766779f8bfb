/**
 * What starting parse threads costs, in a fresh process: the process's CPU time (all its threads:
 * the parse threads loading their modules, V8's compiler and GC threads) from making a CpuPool
 * until it is ready, and its peak RSS. Prints one JSON line.
 *   node --import tsx bench/support/threadStart.ts           — one thread, until it answers (no warm-up)
 *   node --import tsx bench/support/threadStart.ts --warm 2  — a warm pool of 2 (the second thread reads the warm-up files)
 *   ... --parse <file> <format>                               — then one parse, timed apart (the thread's first file)
 *   ... --pool dist/<build>/app/cpuPool.mjs                   — the pool of a build (bin/build.mjs) instead of the sources'
 */

import path from 'node:path';
import type { Format } from '../../src/formats/types.js';

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.slice(at + 1) : undefined;
};
const warm = Number(option('--warm')?.[0] ?? 0);
const parse = option('--parse');
const poolModule = option('--pool')?.[0];
// Loaded before the clock starts: the main thread's own modules are not the threads' start.
const { CpuPool } = (
  poolModule ? await import(path.resolve(poolModule)) : await import('../../src/pool/cpuPool.js')
) as typeof import('../../src/pool/cpuPool.js');
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const started = performance.now();
const startCpu = cpu();
const pool = new CpuPool(Math.max(warm, 1), 600_000, 4096, 0, 0, true);
await pool.warmed;
const result: Record<string, number | boolean | undefined> = {
  threads: pool.threads,
  startMs: Math.round(performance.now() - started),
  startCpuMs: Math.round(cpu() - startCpu),
  startRssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
};
if (parse) {
  const t = performance.now();
  const c = cpu();
  const outcome = await pool.parse({ path: parse[0], format: parse[1] as Format });
  result.parseOk = outcome.ok;
  result.parseMs = Math.round(performance.now() - t);
  result.parseCpuMs = Math.round(cpu() - c);
}
result.maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
await pool.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
