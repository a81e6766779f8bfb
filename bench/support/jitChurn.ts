/**
 * V8's compile and deopt churn in a parse thread (issue 21): the CPU pool's import path (ingest
 * with parse, then parse for a large file, src/pool/tasks.ts) over every corpus pdb/ and cif/ file
 * in ONE worker thread, N passes: the first cold, the rest warm, each in a shuffled order (seeded).
 * Per pass: the thread's CPU and the process's (all threads: V8's compiler and GC threads too).
 * With --trace, the measured process runs under `node --trace-opt --trace-deopt` and, per warm
 * pass and summed over the warm passes per function, the deopts and the TurboFan compiles with the
 * sum of their times ("took a, b, c ms"). A tool: it prints, it asserts nothing.
 *   node --import tsx bench/support/jitChurn.ts [--passes 4] [--seed 1] [--trace] [--from 2] [--warm-up] [--top 25] [--src <a worktree>/src] [--corpus ../shared/corpus]
 * --warm-up: the thread reads pool/warmUp.ts's made-up structures first, as a warm pool's threads
 * after the first do. Functions defined in src/ are marked *.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const passes = Number(option('--passes', '4'));
const seed = Number(option('--seed', '1'));
const top = Number(option('--top', '25'));
const here = path.dirname(fileURLToPath(import.meta.url));
/** The shared corpus beside the repository, as the other benchmarks find it. */
const corpus = path.resolve(option('--corpus', path.join(here, '../../../shared/corpus')));
/** The first pass the per-function table counts (2: the warm passes; 1 to see the cold pass too). */
const from = Number(option('--from', '2'));
/** The src/ directory whose code is measured (another worktree's for an A/B comparison). */
const src = path.resolve(option('--src', path.join(here, '../../src')));

if (args.includes('--child')) {
  // The measured process: one parse thread, as a pool thread is (the tsx loader, Mol*'s types without its table).
  const worker = new Worker(
    `import { register } from 'tsx/esm/api';
     import { loadMolstarWithoutElementTable } from ${JSON.stringify(path.join(src, 'pool/molstarTypes.mjs'))};
     register();
     loadMolstarWithoutElementTable();
     await import(${JSON.stringify(path.join(here, 'jitChurnThread.ts'))});`,
    { eval: true, workerData: { dirs: [path.join(corpus, 'pdb'), path.join(corpus, 'cif')], passes, seed, warmUp: args.includes('--warm-up'), src } },
  );
  await new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`thread exited with ${code}`))));
  });
} else {
  const trace = args.includes('--trace');
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      ...(trace ? ['--trace-opt', '--trace-deopt'] : []),
      fileURLToPath(import.meta.url),
      '--child',
      ...args.filter((a) => a !== '--trace'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  interface PerFunction {
    deopts: number;
    compiles: number;
    compileMs: number;
    reasons: Map<string, number>;
  }
  const ours = ourFunctionNames(src);
  const warm = new Map<string, PerFunction>();
  let pass = 0;
  let passDeopts = 0;
  let passCompiles = 0;
  let passCompileMs = 0;
  const of = (name: string) => {
    let entry = warm.get(name);
    if (!entry) {
      entry = { deopts: 0, compiles: 0, compileMs: 0, reasons: new Map() };
      warm.set(name, entry);
    }
    return entry;
  };
  const fn = (line: string) => /<JSFunction ([^ >]*) ?\(sfi/.exec(line)?.[1] || '(anonymous)';
  const rows: Record<string, unknown>[] = [];
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith('#jitChurn ')) {
      const [, what, n, json] = /^#jitChurn (\w+) (\d+) ?(.*)$/.exec(line) ?? [];
      if (what === 'begin') {
        pass = Number(n);
        passDeopts = passCompiles = 0;
        passCompileMs = 0;
      } else if (what === 'end') {
        const row = {
          ...JSON.parse(json),
          ...(trace ? { deopts: passDeopts, turbofanCompiles: passCompiles, turbofanCompileMs: Math.round(passCompileMs) } : {}),
        };
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
        pass = 0;
      }
      continue;
    }
    if (!trace || pass === 0) continue;
    const bailout = /^\[bailout \(kind: ([^,]+), reason: ([^)]*)\): begin/.exec(line);
    if (bailout) {
      passDeopts++;
      if (pass >= from) {
        const entry = of(fn(line));
        entry.deopts++;
        const offset = /bytecode offset (\d+)/.exec(line)?.[1];
        const reason = `${bailout[2]}@${offset}`;
        entry.reasons.set(reason, (entry.reasons.get(reason) ?? 0) + 1);
      }
      continue;
    }
    const compiled = /^\[completed compiling .*\(target TURBOFAN\).* - took ([\d.]+), ([\d.]+), ([\d.]+) ms\]/.exec(line);
    if (compiled) {
      const ms = Number(compiled[1]) + Number(compiled[2]) + Number(compiled[3]);
      passCompiles++;
      passCompileMs += ms;
      if (pass >= from) {
        const entry = of(fn(line));
        entry.compiles++;
        entry.compileMs += ms;
      }
    }
  }
  await new Promise((resolve) => child.once('close', resolve));
  const warmRows = rows.filter((r) => (r.pass as number) > 1);
  const median = (key: string) => {
    const v = warmRows.map((r) => r[key] as number).sort((a, b) => a - b);
    return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : undefined;
  };
  const keys = ['wallMs', 'threadCpuMs', 'processCpuMs', ...(trace ? ['deopts', 'turbofanCompiles', 'turbofanCompileMs'] : [])];
  process.stdout.write(`warm passes, median: ${keys.map((k) => `${k} ${median(k)}`).join(', ')}\n`);
  if (trace) {
    process.stdout.write(`passes ${from}-${passes}, per function (* = defined in src/):\n`);
    const sorted = [...warm.entries()].sort((a, b) => b[1].compileMs - a[1].compileMs || b[1].deopts - a[1].deopts).slice(0, top);
    for (const [name, e] of sorted) {
      const reasons = [...e.reasons.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([r, c]) => `${r} ×${c}`)
        .join('; ');
      process.stdout.write(
        `${ours.has(name) ? '*' : ' '} ${name.padEnd(32)} compiles ${String(e.compiles).padStart(3)} ${e.compileMs.toFixed(1).padStart(8)} ms  deopts ${String(e.deopts).padStart(3)}  ${reasons}\n`,
      );
    }
  }
}

/** Names of functions and methods declared in src/ (a rough scan, to mark ours apart from Mol*'s). */
function ourFunctionNames(dir: string): Set<string> {
  const names = new Set<string>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.(ts|mjs)$/.test(entry.name)) continue;
    const text = readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(
      /(?:function\*?\s+(\w+)|^\s+(?:private |static |readonly |async )*(\w+)\s*\([^)]*\)\s*(?::[^{;]+)?\{|(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?(?:\([^)]*\)|\w+)\s*(?::[^=]+)?=>)/gm,
    )) {
      names.add(m[1] ?? m[2] ?? m[3]);
    }
  }
  return names;
}
