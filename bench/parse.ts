/**
 * Validate + summarise throughput (MB/s, atoms/s) and peak memory:
 *  - over the corpus (pdb, cif, sdf, mol2, xyz; gzip unpacked first), with the task function the
 *    piscina pool runs, next to `gemmi convert` on the corpus's PDB and mmCIF files;
 *  - over the 186 MB mmCIF of ../shared/corpus/large (generated into /work/large or a temp dir
 *    when absent), next to `gemmi convert` (mmCIF → PDB) and Mol*'s bare CIF tokenizer on the
 *    same file, each in a fresh process so its peak RSS is its own.
 * Goals: at least 3× faster than gemmi convert; within 1.5× of the bare tokenizer.
 *
 *   npm run bench:parse [-- --runs N] [-- --large path/to/file.cif] [-- --skip-corpus]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { sniffFormat } from '../src/formats/sniff.js';
import { parse } from '../src/pool/tasks.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = path.resolve(REPO_ROOT, '../shared/corpus');
const ONE = path.join(REPO_ROOT, 'bench/support/parseOne.ts');

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(option('runs') ?? 2);
const MB = 1024 * 1024;
const fmt = (n: number, digits = 1) => n.toFixed(digits);

function hasTool(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Wall time, CPU time (user + system, s) and peak RSS (MB) of a command, from GNU time. */
function timed(command: string, commandArgs: string[]): { seconds: number; cpuSeconds: number; maxRssMb: number; ok: boolean } {
  const result = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', command, ...commandArgs], { encoding: 'utf8', maxBuffer: 64 * MB });
  const last = result.stderr.trim().split('\n').at(-1) ?? '';
  const [seconds, kb, user, system] = last.split(' ').map(Number);
  return { seconds, cpuSeconds: user + system, maxRssMb: Math.round(kb / 1024), ok: result.status === 0 };
}

interface One {
  ms: number;
  cpuMs: number;
  readCpuMs?: number;
  atoms: number;
  maxRssMb: number;
  ok: boolean;
  readMs?: number;
  message?: string;
}

function inFreshProcess(mode: 'molvault' | 'tokenizer', file: string, format = 'cif'): One {
  const out = execFileSync(process.execPath, ['--max-old-space-size=8192', '--import', 'tsx', ONE, mode, file, format], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 16 * MB,
  });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as One;
}

const best = <T extends { ms: number }>(list: T[]): T => list.reduce((a, b) => (b.ms < a.ms ? b : a));

async function corpus(scratch: string) {
  const rows: { folder: string; files: number; bytes: number; ms: number; atoms: number; gemmiS?: number }[] = [];
  const gemmi = hasTool('gemmi');
  for (const folder of ['pdb', 'cif', 'sdf', 'mol2', 'xyz']) {
    const names = (await fs.readdir(path.join(CORPUS, folder))).sort();
    let bytes = 0;
    let ms = 0;
    let atoms = 0;
    let gemmiS = 0;
    let files = 0;
    for (const name of names) {
      let content = await fs.readFile(path.join(CORPUS, folder, name));
      if (content[0] === 0x1f && content[1] === 0x8b) content = gunzipSync(content);
      const sniff = sniffFormat(content.subarray(0, 64 * 1024));
      if (!sniff.format) continue;
      const file = path.join(scratch, `${folder}_${name.replace(/\.gz$/, '')}`);
      await fs.writeFile(file, content);
      const times: number[] = [];
      let outcome: Awaited<ReturnType<typeof parse>> | undefined;
      for (let r = 0; r < runs; r++) {
        const started = performance.now();
        outcome = await parse({ path: file, format: sniff.format });
        times.push(performance.now() - started);
      }
      files++;
      bytes += content.length;
      ms += Math.min(...times);
      if (outcome?.ok) atoms += outcome.summary.atoms * Math.max(1, outcome.summary.models);
      if (gemmi && (folder === 'pdb' || folder === 'cif')) {
        const out = path.join(scratch, `out${folder === 'pdb' ? '.cif' : '.pdb'}`);
        const started = performance.now();
        spawnSync('gemmi', ['convert', file, out], { stdio: 'ignore' });
        gemmiS += (performance.now() - started) / 1000;
      }
      await fs.rm(file, { force: true });
    }
    rows.push({ folder, files, bytes, ms, atoms, gemmiS: gemmi && (folder === 'pdb' || folder === 'cif') ? gemmiS : undefined });
  }
  console.log('\nCorpus: validate + summarise with the pool task (best of %d runs per file; in-process, warm)', runs);
  console.log('folder  files     MB    seconds    MB/s   M atoms/s   gemmi convert s (per-file process)');
  let total = { files: 0, bytes: 0, ms: 0, atoms: 0 };
  for (const r of rows) {
    total = { files: total.files + r.files, bytes: total.bytes + r.bytes, ms: total.ms + r.ms, atoms: total.atoms + r.atoms };
    console.log(
      `${r.folder.padEnd(6)} ${String(r.files).padStart(6)} ${fmt(r.bytes / MB).padStart(6)} ${fmt(r.ms / 1000, 2).padStart(10)} ${fmt(r.bytes / MB / (r.ms / 1000)).padStart(7)} ${fmt(r.atoms / 1e6 / (r.ms / 1000), 2).padStart(11)}   ${r.gemmiS !== undefined ? `${fmt(r.gemmiS, 2)} (${fmt(r.gemmiS / (r.ms / 1000))}× ours)` : '-'}`,
    );
  }
  console.log(
    `${'all'.padEnd(6)} ${String(total.files).padStart(6)} ${fmt(total.bytes / MB).padStart(6)} ${fmt(total.ms / 1000, 2).padStart(10)} ${fmt(total.bytes / MB / (total.ms / 1000)).padStart(7)} ${fmt(total.atoms / 1e6 / (total.ms / 1000), 2).padStart(11)}`,
  );
  console.log(`process peak RSS after the corpus: ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
}

async function largeFile(scratch: string): Promise<string | undefined> {
  const given = option('large');
  if (given) return given;
  for (const candidate of ['/work/large/1M4X_capsid8x28.cif', path.join(os.tmpdir(), 'molvault-large/1M4X_capsid8x28.cif')]) {
    if (
      await fs
        .access(candidate)
        .then(() => true)
        .catch(() => false)
    )
      return candidate;
  }
  const dir = path.join(os.tmpdir(), 'molvault-large');
  await fs.mkdir(dir, { recursive: true });
  console.log(`generating the large mmCIF into ${dir} (about 10 s and 2 GB of memory) ...`);
  const made = spawnSync(
    '/usr/bin/python3',
    ['make_large.py', '../cif/ngl_1M4X.cif', path.join(dir, '1M4X_capsid8x28.cif'), path.join(dir, '1M4X_capsid8x28.pdb'), '8'],
    { cwd: path.join(CORPUS, 'large'), stdio: 'inherit' },
  );
  if (made.status !== 0) {
    console.log('could not generate the large file (python3-gemmi missing?); skipping it');
    return undefined;
  }
  void scratch;
  return path.join(dir, '1M4X_capsid8x28.cif');
}

async function large(scratch: string) {
  const file = await largeFile(scratch);
  if (!file) return;
  const { size } = await fs.stat(file);
  console.log(`\nLarge mmCIF: ${file} (${fmt(size / MB)} MB); each measurement in a fresh process, best of ${runs}`);
  const ours = best(Array.from({ length: runs }, () => inFreshProcess('molvault', file, 'cif')));
  if (!ours.ok) console.log(`molvault refused the file: ${ours.message}`);
  const tokenizer = best(Array.from({ length: runs }, () => inFreshProcess('tokenizer', file)));
  const gemmiRuns = hasTool('gemmi') ? Array.from({ length: runs }, () => timed('gemmi', ['convert', file, path.join(scratch, 'large.pdb')])) : [];
  const gemmi = gemmiRuns.length ? gemmiRuns.reduce((a, b) => (b.seconds < a.seconds ? b : a)) : undefined;
  const line = (name: string, seconds: number, cpuSeconds: number, rss: number, note = '') =>
    console.log(
      `${name.padEnd(44)} ${fmt(seconds, 2).padStart(7)} s ${fmt(size / MB / seconds).padStart(6)} MB/s ${fmt(ours.atoms / 1e6 / seconds, 2).padStart(5)} M atoms/s | CPU ${fmt(cpuSeconds, 2).padStart(6)} s ${fmt(size / MB / cpuSeconds).padStart(6)} MB/s | ${String(rss).padStart(5)} MB peak RSS ${note}`,
    );
  console.log(`${''.padEnd(44)} ---------------- wall -------------- | ------- CPU -------- |`);
  line('molvault validate + summarise (read + parse)', ours.ms / 1000, ours.cpuMs / 1000, ours.maxRssMb);
  const tokenizerWall = (tokenizer.ms + (tokenizer.readMs ?? 0)) / 1000;
  const tokenizerCpu = (tokenizer.cpuMs + (tokenizer.readCpuMs ?? 0)) / 1000;
  line(
    'Mol* bare CIF tokenizer (read + CIF.parse)',
    tokenizerWall,
    tokenizerCpu,
    tokenizer.maxRssMb,
    `(CIF.parse alone: ${fmt(tokenizer.ms / 1000, 2)} s, CPU ${fmt(tokenizer.cpuMs / 1000, 2)} s)`,
  );
  if (gemmi) line('gemmi convert mmCIF → PDB', gemmi.seconds, gemmi.cpuSeconds, gemmi.maxRssMb);
  else console.log('gemmi is not installed: no comparison');
  console.log(`atoms in the first model: ${ours.atoms}`);
  console.log(
    `vs tokenizer (goal ≤ 1.5×): ${fmt(ours.ms / 1000 / tokenizerWall, 2)}× its wall time, ${fmt(ours.cpuMs / 1000 / tokenizerCpu, 2)}× its CPU time (both reading the file); against CIF.parse alone ${fmt(ours.ms / tokenizer.ms, 2)}× wall, ${fmt(ours.cpuMs / tokenizer.cpuMs, 2)}× CPU`,
  );
  if (gemmi) {
    console.log(
      `vs gemmi convert (goal ≥ 3×): ${fmt(gemmi.seconds / (ours.ms / 1000), 2)}× faster in wall time, ${fmt(gemmi.cpuSeconds / (ours.cpuMs / 1000), 2)}× in CPU time`,
    );
  }
}

const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-parse-'));
try {
  console.log(
    `bench:parse on ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => fmt(l))
      .join(' ')}`,
  );
  if (!args.includes('--skip-corpus')) await corpus(scratch);
  await large(scratch);
} finally {
  await fs.rm(scratch, { recursive: true, force: true });
}
