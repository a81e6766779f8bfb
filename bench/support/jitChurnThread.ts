/**
 * The parse thread of jitChurn.ts: reads every corpus file through the pool's import path, pass
 * after pass, in one thread. Pass markers go straight to fd 1 (synchronously), so that they land
 * in order among V8's --trace-opt / --trace-deopt lines, which V8 writes there too.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { workerData } from 'node:worker_threads';

const { dirs, passes, seed, warmUp, src } = workerData as { dirs: string[]; passes: number; seed: number; warmUp: boolean; src: string };
// The sources measured: this tree's, or another worktree's (--src), for an A/B comparison.
const { ingest, parse } = (await import(path.join(src, 'pool/tasks.js'))) as typeof import('../../src/pool/tasks.js');

/** A small seeded generator, so that A and B meet the files in the same orders. */
function random(state: number): () => number {
  let s = state >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

// Staged copies of our own: the import links its staged file to the temp file (corpus files are not ours to link).
const scratch = mkdtempSync(path.join(os.tmpdir(), 'jitChurn-'));
const staging = path.join(scratch, 'staging');
mkdirSync(staging);
const files: { staged: string; bytes: number }[] = [];
for (const dir of dirs) {
  for (const name of readdirSync(dir).sort()) {
    const staged = path.join(staging, `${path.basename(dir)}-${name}`);
    copyFileSync(path.join(dir, name), staged);
    files.push({ staged, bytes: statSync(staged).size });
  }
}

const say = (line: string) => writeSync(1, `#jitChurn ${line}\n`);
// As a warm pool's threads after the first start (pool/thread.ts): the made-up structures first, before pass 1.
if (warmUp) await ((await import(path.join(src, 'pool/warmUp.js'))) as typeof import('../../src/pool/warmUp.js')).warmUpReaders();
const next = random(seed);
let order = files.slice();
try {
  for (let pass = 1; pass <= passes; pass++) {
    if (pass > 1) {
      order = order.slice();
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    say(`begin ${pass}`);
    const thread = process.threadCpuUsage();
    const all = process.cpuUsage();
    const started = performance.now();
    let refused = 0;
    for (const [i, file] of order.entries()) {
      const tempFile = path.join(scratch, `temp-${pass}-${i}`);
      // As a bulk import's chunk: ingest parses a small file while it is in memory; a large one is parsed by validate.
      const result = await ingest({ stagingFile: file.staged, tempFile, maxExpandedBytes: 2 ** 34, maxExpansionRatio: 1000, parse: true });
      if (result.ok && !result.parsed && result.detected) {
        const outcome = await parse({ path: tempFile, format: result.detected });
        if (!outcome.ok) refused++;
      } else if (!result.ok || !result.parsed?.outcome.ok) refused++;
      if (process.env.JITCHURN_DEBUG && pass === 1) writeSync(2, `${file.staged} ${JSON.stringify(result).slice(0, 300)}\n`);
      rmSync(tempFile, { force: true });
    }
    const threadUs = process.threadCpuUsage(thread);
    const allUs = process.cpuUsage(all);
    const figures = {
      pass,
      files: order.length,
      refused,
      wallMs: Math.round(performance.now() - started),
      threadCpuMs: Math.round((threadUs.user + threadUs.system) / 1000),
      processCpuMs: Math.round((allUs.user + allUs.system) / 1000),
    };
    say(`end ${pass} ${JSON.stringify(figures)}`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
