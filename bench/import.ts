/**
 * Bulk import benchmark: runs the real `molvault import` command (a child process, as a user
 * would) against an in-process molvault (API + all workers, scratch database, queues and data dir)
 * and measures, per data set:
 *  - files/s and MB/s, and the time from starting the command to the last item stored;
 *  - the time to the last item being searchable (GET /v1/search?project= until its total is reached);
 *  - the latency of GET /v1/structures/:id on structures stored before the import, from a client
 *    reading them while the import runs (p50/p95/p99).
 *
 * Data sets: (a) the corpus pdb/ and cif/ folders as they are; (b) N files (default 5,000) made by
 * repeating the corpus pdb/ and cif/ files under 100 KB, each with one added comment line so every
 * file has its own sha256 (a resumed import would otherwise skip them).
 *
 *   npm run bench:import -- [--files 5000] [--only corpus|small] [--readers 1] [--concurrency 4]
 *                           [--files-per-import 2000] [--timeout 1800] [--worker-process]
 *                           [--stores local,s3] [--rounds 1] [--warm-up | --warm-ups N]
 *
 * --warm-ups N imports N marked copies of the corpus folders first (--warm-up: one), so set (a)
 * meets a server that has worked, as a running deployment's has; (w1) is then the cold figure.
 *
 * --worker-process runs the workers in a `molvault worker` process of their own, as a deployment
 * with separate api and worker processes does; without it, API and workers share this process.
 *
 * Goal (issue 7): at least 150 files/s for files under 100 KB, GET /v1/structures/:id p95 under
 * 50 ms while the import runs.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ImportSummary } from '../src/cli/import.js';
import { QUEUE_NAMES } from '../src/config/index.js';
import { commentLine, quantile } from './support/figures.js';
import { startRgw } from './support/rgw.js';
import { type BenchStack, createBenchUser, createProject, formatMB, MB, startBenchStack, stopOnSignals, UsageError } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO_ROOT, 'bin/molvault.js');
const CORPUS = path.resolve(REPO_ROOT, '../shared/corpus');
const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
const SMALL_BYTES = 100_000;
/** Structures the reader client reads while imports run; stored before they start. */
const READ_SET = 20;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '5000' },
      only: { type: 'string' },
      readers: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '4' },
      'files-per-import': { type: 'string', default: '2000' },
      timeout: { type: 'string', default: '1800' },
      'worker-process': { type: 'boolean', default: false },
      /** Blob stores to compare in one run; s3 starts a throw-away Ceph RGW (test/support/rgw-start.sh). */
      stores: { type: 'string', default: 'local,s3' },
      /** Runs of every store, one after another (local, s3, local, s3, …): each pair's ratio, then their median. */
      rounds: { type: 'string', default: '1' },
      /**
       * Imports a copy of the corpus folders first (each file given a distinct comment line, so
       * nothing is deduplicated against the measured set), into a project of its own, and reports
       * it beside the measured sets: the measured import then meets a server that has already
       * worked, as a running deployment's has, instead of one whose code is compiled by its first
       * import. Without it the figures are the cold ones earlier runs printed.
       */
      'warm-up': { type: 'boolean', default: false },
      /**
       * How many such copies go first (each with comment lines of its own; --warm-up is one). One
       * import leaves the server still compiling: its second to fourth imports keep getting faster.
       */
      'warm-ups': { type: 'string' },
    },
  });
  const whole = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, not "${text}"`);
    return n;
  };
  if (values.only !== undefined && values.only !== 'corpus' && values.only !== 'small') throw new UsageError('--only must be corpus or small');
  return {
    files: whole('files', values.files, 1),
    only: values.only as 'corpus' | 'small' | undefined,
    readers: whole('readers', values.readers, 0),
    workerProcess: values['worker-process'] ?? false,
    concurrency: whole('concurrency', values.concurrency, 1),
    filesPerImport: whole('files-per-import', values['files-per-import'], 1),
    timeoutMs: whole('timeout', values.timeout, 1) * 1000,
    rounds: whole('rounds', values.rounds, 1),
    warmUps: values['warm-ups'] !== undefined ? whole('warm-ups', values['warm-ups'], 0) : values['warm-up'] ? 1 : 0,
    stores: (values.stores ?? 'local,s3').split(',').map((store) => {
      if (store !== 'local' && store !== 's3') throw new UsageError(`--stores takes local and/or s3, not "${store}"`);
      return store;
    }),
  };
}

interface SourceFile {
  file: string;
  folder: 'pdb' | 'cif';
}

/** Corpus pdb/ and cif/ files (fixtures when the corpus is absent), as the folders hold them. */
async function corpusFiles(): Promise<SourceFile[]> {
  const files: SourceFile[] = [];
  for (const folder of ['pdb', 'cif'] as const) {
    const dir = path.join(CORPUS, folder);
    const names = await fs.readdir(dir).catch(() => undefined);
    if (!names) continue;
    for (const name of names.sort()) files.push({ file: path.join(dir, name), folder });
  }
  if (files.length) return files;
  for (const name of await fs.readdir(FIXTURES)) {
    if (/\.pdb(\.gz)?$/.test(name)) files.push({ file: path.join(FIXTURES, name), folder: 'pdb' });
    if (/\.cif(\.gz)?$/.test(name)) files.push({ file: path.join(FIXTURES, name), folder: 'cif' });
  }
  return files;
}

const isGzip = (bytes: Buffer) => bytes[0] === 0x1f && bytes[1] === 0x8b;

async function readContent(file: string): Promise<Buffer> {
  const bytes = await fs.readFile(file);
  return isGzip(bytes) ? gunzipSync(bytes) : bytes;
}

/** Set (a): the corpus folders copied as they are (a folder of links would be skipped: links are not followed). */
async function makeCorpusSet(dir: string, sources: SourceFile[]): Promise<void> {
  for (const source of sources) {
    await fs.mkdir(path.join(dir, source.folder), { recursive: true });
    await fs.copyFile(source.file, path.join(dir, source.folder, path.basename(source.file)));
  }
}

/** The content with a comment line first (PDB: a REMARK; mmCIF: a `#` line), so its sha256 is its own. */
function marked(folder: 'pdb' | 'cif', content: Buffer, label: string): Buffer {
  return Buffer.concat([Buffer.from(commentLine(folder, `molvault bench:import ${label}`)), content]);
}

/** Set (b): `count` files cycling over the small sources, each with a distinct comment line. */
async function makeSmallSet(dir: string, sources: SourceFile[], count: number): Promise<{ sources: number }> {
  const small: { folder: 'pdb' | 'cif'; name: string; content: Buffer }[] = [];
  for (const source of sources) {
    const content = await readContent(source.file);
    if (content.length >= SMALL_BYTES) continue;
    small.push({ folder: source.folder, name: path.basename(source.file).replace(/\.gz$/, ''), content });
  }
  if (small.length === 0) throw new Error('no corpus file under 100 KB to repeat');
  for (const folder of ['pdb', 'cif']) await fs.mkdir(path.join(dir, folder), { recursive: true });
  for (let i = 0; i < count; i++) {
    const source = small[i % small.length];
    await fs.writeFile(path.join(dir, source.folder, `${String(i).padStart(5, '0')}_${source.name}`), marked(source.folder, source.content, `copy ${i}`));
  }
  return { sources: small.length };
}

/** The warm-up set: every corpus file with a distinct comment line first (compressed again when it was), so its content is new. */
async function makeWarmUpSet(dir: string, sources: SourceFile[], round: number): Promise<void> {
  for (const [i, source] of sources.entries()) {
    await fs.mkdir(path.join(dir, source.folder), { recursive: true });
    const bytes = await fs.readFile(source.file);
    const compressed = isGzip(bytes);
    const content = compressed ? gunzipSync(bytes) : bytes;
    const copy = marked(source.folder, content, `warm-up ${round} ${i}`);
    await fs.writeFile(path.join(dir, source.folder, path.basename(source.file)), compressed ? gzipSync(copy) : copy);
  }
}

/** What `molvault import --json` prints (the command's own type). */
type CliSummary = ImportSummary;

/** Runs `molvault import` as a child process; its progress lines pass through to our stderr. */
function runCli(args: string[], timeoutMs: number, onStart?: (pid: number) => void): Promise<{ code: number; summary?: CliSummary; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, 'import', ...args], { timeout: timeoutMs, maxBuffer: 64 * MB }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: number }).code ?? 1) : 0;
      let summary: CliSummary | undefined;
      try {
        summary = JSON.parse(stdout) as CliSummary;
      } catch {
        summary = undefined;
      }
      resolve({ code: typeof code === 'number' ? code : 1, summary, stderr });
    });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`  | ${chunk.toString().replace(/\n(?=.)/g, '\n  | ')}`));
    if (child.pid) onStart?.(child.pid);
  });
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** CPU seconds a process has used (all its threads; with `children`, also its waited-for children), from /proc. */
async function processCpuSeconds(pid: number | 'self', children = false): Promise<number | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (f[11] + f[12] + (children ? f[13] + f[14] : 0)) / CLOCK_TICKS;
}

/** The parent's pid from /proc/<pid>/stat. */
async function parentPid(pid: number): Promise<number | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : undefined;
}

/**
 * CPU seconds of the Postgres processes on this machine (an exited backend's time is in the
 * postmaster's children's): every one of them, and those of one server (its postmaster and its
 * children) when `postmasterPid` is given. Both are reported: the machine-wide figure is how earlier
 * runs counted, and it includes other users' work on a shared machine.
 */
async function postgresCpuSeconds(postmasterPid: number | undefined): Promise<{ all: number; own: number | undefined }> {
  let all = 0;
  let own = 0;
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await fs.readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() !== 'postgres') continue;
    const pid = Number(entry);
    const seconds = (await processCpuSeconds(pid, true)) ?? 0;
    all += seconds;
    if (postmasterPid !== undefined && (pid === postmasterPid || (await parentPid(pid)) === postmasterPid)) own += seconds;
  }
  return { all, own: postmasterPid === undefined ? undefined : own };
}

async function cpuSecondsOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += (await processCpuSeconds(pid, true)) ?? 0;
  return total;
}

interface CpuUse {
  molvault: number;
  client: number;
  /** Every Postgres process on the machine (how earlier runs counted). */
  postgres: number;
  /** The bench's own embedded Postgres only; undefined with DATABASE_URL. */
  ownPostgres: number | undefined;
  /** The object store's processes (RGW, OSD, monitor) when the run is on S3. */
  objectStore: number | undefined;
  seconds: number;
}

/**
 * Samples, while a set imports, the CPU of molvault's processes (this one, the worker process),
 * of the `molvault import` client, of Postgres and of the object store's processes (when they run
 * on this machine): CPU per file is steadier than files/s on a shared machine, and says where each
 * file's cost goes.
 */
function startCpuMeter(workerPid: number | undefined, others: { postmasterPid?: number; objectStorePids?: number[] }) {
  const molvault = async () => ((await processCpuSeconds('self')) ?? 0) + (workerPid ? ((await processCpuSeconds(workerPid)) ?? 0) : 0);
  const store = () => (others.objectStorePids ? cpuSecondsOf(others.objectStorePids) : Promise.resolve(undefined));
  let clientPid: number | undefined;
  let clientLast = 0;
  let stopped = false;
  const started = Promise.all([molvault(), postgresCpuSeconds(others.postmasterPid), store()]);
  const startedAt = performance.now();
  const sampling = (async () => {
    while (!stopped) {
      if (clientPid) clientLast = (await processCpuSeconds(clientPid)) ?? clientLast;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  return {
    client(pid: number) {
      clientPid = pid;
    },
    async stop(): Promise<CpuUse> {
      const [molvaultAfter, postgresAfter, storeAfter] = await Promise.all([molvault(), postgresCpuSeconds(others.postmasterPid), store()]);
      stopped = true;
      await sampling;
      const [molvaultBefore, postgresBefore, storeBefore] = await started;
      return {
        molvault: molvaultAfter - molvaultBefore,
        client: clientLast,
        postgres: postgresAfter.all - postgresBefore.all,
        ownPostgres: postgresAfter.own === undefined || postgresBefore.own === undefined ? undefined : postgresAfter.own - postgresBefore.own,
        objectStore: storeAfter === undefined || storeBefore === undefined ? undefined : storeAfter - storeBefore,
        seconds: (performance.now() - startedAt) / 1000,
      };
    },
  };
}

/** The embedded Postgres's postmaster (its pid file's first line), or undefined when the bench uses DATABASE_URL's server. */
async function embeddedPostmasterPid(stack: BenchStack): Promise<number | undefined> {
  if (stack.postgresSource !== 'embedded') return undefined;
  const text = await fs.readFile(path.join(stack.dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Reads already-stored structures in a loop until stopped; the latencies of GET /v1/structures/:id. */
function startReaders(url: string, token: string, ids: string[], readers: number) {
  const latencies: number[] = [];
  const errors: string[] = [];
  let stopped = false;
  let next = 0;
  const loop = async () => {
    while (!stopped) {
      const id = ids[next++ % ids.length];
      const started = performance.now();
      try {
        const response = await fetch(`${url}/v1/structures/${id}`, { headers: { authorization: `Bearer ${token}` } });
        await response.arrayBuffer();
        if (response.status !== 200) errors.push(`HTTP ${response.status}`);
        else latencies.push(performance.now() - started);
      } catch (error) {
        errors.push((error as Error).message);
      }
      // A person or a viewer, not a load generator: a few reads a second per reader.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const loops = Array.from({ length: readers }, loop);
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { latencies: latencies.sort((a, b) => a - b), errors };
    },
  };
}

/** Polls the search total of one project until stopped: (time, total) samples. */
function startSearchWatch(url: string, token: string, projectId: string) {
  const samples: { at: number; total: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const response = await fetch(`${url}/v1/search?project=${projectId}&limit=1`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await response.json()) as { total?: number };
        if (typeof body.total === 'number') samples.push({ at: Date.now(), total: body.total });
      } catch {
        // The next poll tells.
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    samples,
    /** First time the project's search total reached `expected`, waiting up to `timeoutMs` more for it. */
    async reached(expected: number, timeoutMs: number): Promise<number | undefined> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = samples.find((s) => s.total >= expected);
        if (hit) return hit.at;
        if (Date.now() > deadline) return undefined;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Stores a few structures before the import, for the reader client; returns their ids. */
async function storeReadSet(stack: BenchStack, token: string, sources: SourceFile[]): Promise<string[]> {
  const projectId = await createProject(stack.url, token, 'structures read during the import');
  const ids: string[] = [];
  const small = [];
  for (const source of sources) {
    const content = await readContent(source.file);
    if (content.length < SMALL_BYTES) small.push({ name: path.basename(source.file).replace(/\.gz$/, ''), content });
    if (small.length >= READ_SET) break;
  }
  for (const { name, content } of small) {
    const form = new FormData();
    form.append('file', new Blob([content]), name);
    const response = await fetch(`${stack.url}/v1/projects/${projectId}/structures`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, prefer: 'wait=60' },
      body: form,
    });
    const body = (await response.json()) as { structure?: { id: string } };
    if (response.status === 201 && body.structure?.id) ids.push(body.structure.id);
  }
  if (ids.length === 0) throw new Error('could not store any structure for the reader client');
  return ids;
}

interface SetResult {
  name: string;
  files: number;
  bytes: number;
  summary?: CliSummary;
  exitCode: number;
  wallMs: number;
  lastStoredMs?: number;
  lastSearchableMs?: number;
  latencies: number[];
  readErrors: string[];
  cpu: CpuUse;
}

async function runSet(
  stack: BenchStack,
  token: string,
  readIds: string[],
  options: ReturnType<typeof parseOptions>,
  name: string,
  dir: string,
  workerPid: number | undefined,
  others: { postmasterPid?: number; objectStorePids?: number[] },
): Promise<SetResult> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile());
  let bytes = 0;
  for (const entry of files) bytes += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  const projectName = `bench import ${name} ${new Date().toISOString()}`;
  const projectId = await createProject(stack.url, token, projectName);
  process.stderr.write(`\n${name}: importing ${files.length} files (${formatMB(bytes)} MB) with molvault import...\n`);

  const readers = startReaders(stack.url, token, readIds, options.readers);
  const watch = startSearchWatch(stack.url, token, projectId);
  const cpu = startCpuMeter(workerPid, others);
  const started = Date.now();
  const cli = await runCli(
    [
      dir,
      '--project',
      projectName,
      '--server',
      stack.url,
      '--token',
      token,
      '--json',
      '--concurrency',
      String(options.concurrency),
      '--files-per-import',
      String(options.filesPerImport),
    ],
    options.timeoutMs,
    (pid) => cpu.client(pid),
  );
  const wallMs = Date.now() - started;
  const { latencies, errors } = await readers.stop();
  if (!cli.summary) process.stderr.write(`molvault import exited ${cli.code} without a summary:\n${cli.stderr}\n`);

  // When the last version of the project was made (the snapshot stores it), by Postgres's clock: the same host's.
  const [row] = await stack.ctx.orm.em
    .fork()
    .execute<{ last: string | null }[]>(
      'select (extract(epoch from max(v.created_at)) * 1000)::bigint as last from structure_versions v join structures s on s.id = v.structure_id where s.project_id = ?',
      [projectId],
    );
  const lastStoredAt = row?.last ? Number(row.last) : undefined;
  const searchableAt = cli.summary ? await watch.reached(cli.summary.stored, 120_000) : undefined;
  const cpuUse = await cpu.stop();
  await watch.stop();
  return {
    name,
    files: files.length,
    bytes,
    summary: cli.summary,
    exitCode: cli.code,
    wallMs,
    lastStoredMs: lastStoredAt ? lastStoredAt - started : undefined,
    lastSearchableMs: searchableAt ? searchableAt - started : undefined,
    latencies,
    readErrors: errors,
    cpu: cpuUse,
  };
}

const perFile = (seconds: number, files: number) => `${((seconds * 1000) / files).toFixed(2)} ms`;

function report(options: ReturnType<typeof parseOptions>, stack: BenchStack, startupMs: number, results: SetResult[]) {
  const ms = (value: number) => (Number.isNaN(value) ? 'n/a' : `${value.toFixed(1)} ms`);
  const seconds = (value: number | undefined) => (value === undefined ? 'n/a' : `${(value / 1000).toFixed(2)} s`);
  const lines = [
    '',
    'molvault bulk import benchmark',
    '==============================',
    `command:          molvault import DIR --concurrency ${options.concurrency} --files-per-import ${options.filesPerImport} (child process)`,
    `services:         Postgres ${stack.postgresSource}, Redis ${stack.ctx.config.redisUrl}; ${options.workerProcess ? 'API in-process, workers in a `molvault worker` process' : 'API and workers in-process'} (${os.cpus().length} CPUs, ${stack.ctx.config.parseThreads} parse threads); started in ${(startupMs / 1000).toFixed(1)} s`,
    `reader client:    ${options.readers} loop(s) of GET /v1/structures/:id over ${READ_SET} structures stored before, 50 ms apart`,
  ];
  for (const r of results) {
    const s = r.summary;
    const perSecond = (count: number, timeMs: number | undefined) => (timeMs ? (count / (timeMs / 1000)).toFixed(1) : 'n/a');
    lines.push(
      '',
      `${r.name}`,
      `  files:                 ${r.files} (${formatMB(r.bytes)} MB; 1 MB = 10^6 bytes)`,
      s
        ? `  outcome:               ${s.stored} stored, ${s.rejected} rejected, ${s.failed} failed, ${s.skipped} skipped; ${s.imports.length} import(s); exit ${r.exitCode}`
        : `  outcome:               molvault import exited ${r.exitCode} without a summary`,
      `  command start → last item stored:      ${seconds(r.lastStoredMs)}  → ${perSecond(r.files, r.lastStoredMs)} files/s, ${r.lastStoredMs ? (r.bytes / MB / (r.lastStoredMs / 1000)).toFixed(2) : 'n/a'} MB/s`,
      `  command start → last item searchable:  ${seconds(r.lastSearchableMs)}`,
      `  command start → command ended:         ${seconds(r.wallMs)}`,
      s
        ? `  the command's own phases:              checksums (overlapping the upload) ${s.checksumSeconds.toFixed(2)} s; upload until the last 202 ${s.uploadSeconds.toFixed(2)} s; first byte → all items ended ${s.processingSeconds.toFixed(2)} s (${s.filesPerSecond.toFixed(1)} files/s, ${s.megabytesPerSecond.toFixed(2)} MB/s)`
        : '',
      `  GET /v1/structures/:id during the import (${r.latencies.length} reads${r.readErrors.length ? `, ${r.readErrors.length} errors: ${[...new Set(r.readErrors)].slice(0, 3).join('; ')}` : ''}):`,
      `    p50 ${ms(percentile(r.latencies, 50))}   p95 ${ms(percentile(r.latencies, 95))}   p99 ${ms(percentile(r.latencies, 99))}   max ${ms(r.latencies[r.latencies.length - 1] ?? Number.NaN)}`,
      `  CPU per file (command start → last searchable): molvault ${perFile(r.cpu.molvault, r.files)}, ` +
        (r.cpu.ownPostgres === undefined
          ? `Postgres ${perFile(r.cpu.postgres, r.files)}`
          : `Postgres ${perFile(r.cpu.ownPostgres, r.files)} (the bench's own server; every Postgres on the machine, as earlier rows counted: ${perFile(r.cpu.postgres, r.files)})`) +
        (r.cpu.objectStore === undefined ? '' : `, the object store (RGW, OSD, monitor) ${perFile(r.cpu.objectStore, r.files)}`) +
        `, the import command ${perFile(r.cpu.client, r.files)}; ` +
        `${((r.cpu.molvault + (r.cpu.ownPostgres ?? r.cpu.postgres) + (r.cpu.objectStore ?? 0) + r.cpu.client) / r.cpu.seconds).toFixed(2)} of ${os.availableParallelism()} cores busy with them`,
    );
    if (s?.failures.length) {
      lines.push(`  not stored (${s.failures.length}):`);
      for (const f of s.failures.slice(0, 15)) lines.push(`    ${f.name}: ${f.message}`);
      if (s.failures.length > 15) lines.push(`    ... and ${s.failures.length - 15} more`);
    }
  }
  lines.push(
    '',
    'goal: ≥ 150 files/s for files under 100 KB; GET /v1/structures/:id p95 < 50 ms while importing',
    `goal (issue 21): the corpus folders (a) at ≥ 40 MB/s${
      options.warmUps > 0
        ? `; here after ${options.warmUps} warm-up import(s) of the same size: (w1), the first import after the stack started, is the cold figure`
        : ' (a cold server: the first import after the stack started; --warm-ups N measures one that has worked)'
    }`,
  );
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

async function main() {
  const options = parseOptions();
  const byStore: { round: number; store: string; results: SetResult[] }[] = [];
  let exitCode = 0;
  // Interleaved rounds: on a shared machine the load drifts within minutes, so each pair is compared
  // on its own and the median pair reported (one round is the single pair of earlier runs).
  for (let round = 1; round <= options.rounds; round++) {
    for (const store of options.stores) {
      const outcome = await benchStore(options, store);
      byStore.push({ round, store, results: outcome.results });
      exitCode = Math.max(exitCode, outcome.exitCode);
    }
  }
  // The comparison the object store is held to: files under 100 KB per second, S3 against local.
  const small = (round: number, store: string) =>
    byStore.find((b) => b.round === round && b.store === store)?.results.find((r) => r.name.startsWith('(b)'))?.summary?.filesPerSecond;
  const ratios: number[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const local = small(round, 'local');
    const s3 = small(round, 's3');
    if (!local || !s3) continue;
    ratios.push(s3 / local);
    process.stdout.write(
      `blob stores, files under 100 KB${options.rounds > 1 ? ` (round ${round})` : ''}: local ${local.toFixed(1)} files/s, s3 ${s3.toFixed(1)} files/s: s3 at ${((s3 / local) * 100).toFixed(0)}% of local (goal ≥ 70%)\n`,
    );
  }
  if (ratios.length > 1) {
    const median = quantile(ratios, 0.5);
    process.stdout.write(`blob stores, files under 100 KB, median of ${ratios.length} rounds: s3 at ${(median * 100).toFixed(0)}% of local (goal ≥ 70%)\n`);
  }
  process.exit(exitCode);
}

async function benchStore(options: ReturnType<typeof parseOptions>, store: 'local' | 's3'): Promise<{ results: SetResult[]; exitCode: number }> {
  const sources = await corpusFiles();
  if (sources.length === 0) throw new Error(`no pdb/ or cif/ files in ${CORPUS} or ${FIXTURES}`);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-import-'));
  const startupStarted = performance.now();
  process.stderr.write(
    `starting molvault (scratch database, queues and data dir): API ${options.workerProcess ? 'in this process, workers in a `molvault worker` process' : 'and workers in this process, as `molvault start` runs them'}...\n`,
  );
  process.stderr.write(`blob store: ${store}\n`);
  const rgw = store === 's3' ? await startRgw() : undefined;
  const stack = await startBenchStack({ workerQueues: options.workerProcess ? [] : [...QUEUE_NAMES], env: rgw?.env });
  // As deployed with separate api and worker processes (DESIGN.md): the API's event loop serves reads only.
  const worker = options.workerProcess
    ? spawn(process.execPath, [BIN, 'worker'], {
        env: {
          ...process.env,
          DATABASE_URL: stack.ctx.config.databaseUrl,
          REDIS_URL: stack.ctx.config.redisUrl,
          QUEUE_PREFIX: stack.ctx.config.queuePrefix,
          DATA_DIR: stack.ctx.config.dataDir,
          LOG_LEVEL: 'warn',
          ...rgw?.env,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      })
    : undefined;
  const stopAll = async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
    await stack.stop();
    await rgw?.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  };
  stopOnSignals(stopAll);
  let exitCode = 0;
  try {
    const { token } = await createBenchUser(stack.ctx, 1024 ** 4);
    const readIds = await storeReadSet(stack, token, sources);
    const startupMs = performance.now() - startupStarted;
    const sets: { name: string; dir: string }[] = [];
    for (let round = 1; round <= options.warmUps; round++) {
      const dir = path.join(scratch, `warm-up-${round}`);
      await makeWarmUpSet(dir, sources, round);
      sets.push({ name: `(w${round}) warm-up ${round}: a copy of the corpus folders, each file with a distinct comment line [${store}]`, dir });
    }
    if (options.only !== 'small') {
      const dir = path.join(scratch, 'corpus');
      await makeCorpusSet(dir, sources);
      sets.push({ name: `(a) corpus pdb/ and cif/ folders [${store}]`, dir });
    }
    if (options.only !== 'corpus') {
      const dir = path.join(scratch, 'small');
      const made = await makeSmallSet(dir, sources, options.files);
      sets.push({ name: `(b) ${options.files} files under 100 KB (${made.sources} corpus files repeated, each with a distinct comment line) [${store}]`, dir });
    }
    const others = { postmasterPid: await embeddedPostmasterPid(stack), objectStorePids: await rgw?.pids() };
    const results: SetResult[] = [];
    for (const set of sets) results.push(await runSet(stack, token, readIds, options, set.name, set.dir, worker?.pid, others));
    report(options, stack, startupMs, results);
    if (results.some((r) => !r.summary || r.exitCode > 1)) exitCode = 1;
    return { results, exitCode };
  } finally {
    process.stderr.write('cleaning up (workers, API, queues, database, services, data dir)...\n');
    await stopAll();
  }
}

main().catch((error) => {
  process.stderr.write(
    `bench:import failed: ${error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (error as Error).message : ((error as Error).stack ?? error)}\n`,
  );
  process.exit(1);
});
