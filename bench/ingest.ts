/**
 * Ingest benchmark: uploads corpus files through the real HTTP API of an in-process molvault
 * (API + all workers, scratch database, queues and data dir) and measures, per file, the time
 * from starting the upload until the upload is searchable (or rejected / failed).
 *
 *   npm run bench:ingest -- [--corpus DIR]... [--concurrency N] [--timeout SECONDS] [--gemmi [--repeat N]]
 *
 * --gemmi: for every stored file of 10 MB or more, gemmi.read_structure's time on the same file
 * (python3-gemmi, system /usr/bin/python3, best of 2 before the uploads and 2 after) next to its upload →
 * searchable latency, against issue 21's goal: the large PDB searchable within 2× gemmi's read,
 * with the CPU time this process (client, API, workers) spent while the upload was in flight.
 * Give it a folder holding the large PDB alone (bench:parse generates it into the temp dir).
 * The first upload meets a fresh server, compiling its code as it goes; gemmi's figure is a best of
 * two. So each such file is then uploaded again `--repeat` times (default 2), one at a time, as a
 * copy with a comment line of its own (so it is not the same content), and the goal's figure is the
 * best of those, with the first upload's printed beside it (the method before 2026-12-08).
 *
 * Without --corpus it reads ../shared/corpus/pdb and ../shared/corpus/cif (relative to the repo root).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QUEUE_NAMES } from '../src/config/index.js';
import { commentLine } from './support/figures.js';
import { createBenchUser, createProject, formatMB, MB, startBenchStack, stopOnSignals, UsageError } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CORPUS = ['../shared/corpus/pdb', '../shared/corpus/cif'].map((dir) => path.resolve(REPO_ROOT, dir));
/** Short enough to resolve latency finely, long enough not to load the API with polls. */
/** Only used if `Prefer: wait` ran out before the upload ended. */
const POLL_INTERVAL_MS = 200;

type Outcome = 'stored' | 'rejected' | 'failed';

interface FileResult {
  file: string;
  bytes: number;
  outcome: Outcome;
  /** Upload start → searchable (stored) or → final state (rejected / failed). */
  latencyMs: number;
  /**
   * CPU time of this whole process (client, API, workers and their threads; not Postgres or Redis)
   * from the upload's start to its end: with one upload in flight, what it cost molvault and the client.
   */
  cpuMs: number;
  error?: string;
}

interface UploadState {
  state: string;
  searchable?: boolean;
  error?: { code?: string; message?: string };
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      corpus: { type: 'string', multiple: true },
      concurrency: { type: 'string', default: '4' },
      timeout: { type: 'string', default: '600' },
      gemmi: { type: 'boolean', default: false },
      repeat: { type: 'string', default: '2' },
    },
  });
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 0) throw new UsageError(`--repeat must be a whole number ≥ 0, not "${values.repeat}"`);
  const concurrency = Number(values.concurrency);
  const timeoutSeconds = Number(values.timeout);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a whole number ≥ 1, not "${values.concurrency}"`);
  if (!(timeoutSeconds > 0)) throw new UsageError(`--timeout must be a number of seconds, not "${values.timeout}"`);
  const corpus = values.corpus?.length ? values.corpus.map((dir) => path.resolve(dir)) : DEFAULT_CORPUS;
  return { corpus, concurrency, timeoutMs: timeoutSeconds * 1000, gemmi: values.gemmi ?? false, repeat };
}

async function listFiles(dirs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const dir of dirs) {
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch((error: Error) => {
      throw new Error(`cannot read corpus folder ${dir}: ${error.message}`);
    });
    for (const entry of entries) if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name));
  }
  return files.sort();
}

function errorText(error: { code?: string; message?: string } | undefined, fallback: string): string {
  if (!error) return fallback;
  return error.code ? `${error.code}: ${error.message ?? ''}` : (error.message ?? fallback);
}

/**
 * A multipart POST of one file streamed from disk: the client shares this process (and its two
 * cores) with the API and workers, so it must cost little; a FormData of a Blob held in memory
 * took seconds of the event loop for a large file.
 */
function postFile(
  url: string,
  headers: Record<string, string>,
  file: string,
  name: string,
  size: number,
  signal: AbortSignal,
): Promise<{ status: number; body: unknown }> {
  const boundary = `molvault-bench-${randomUUID()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    request.on('error', reject);
    request.write(head);
    const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
    source.on('error', reject);
    source.on('end', () => request.end(tail));
    source.pipe(request, { end: false });
  });
}

/**
 * One file: POST it with `Prefer: wait=60`, as a client that wants the result does; the answer
 * comes when the upload is searchable (201) or refused (4xx). Polls only if the wait ran out (202).
 */
async function ingestOne(baseUrl: string, token: string, projectId: string, file: string, timeoutMs: number, signal: AbortSignal): Promise<FileResult> {
  // Streamed from disk while the clock runs; read once first so the page cache serves it, and the
  // measurement is molvault's, not the disk's.
  const { size } = await fs.stat(file);
  for await (const _ of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) {
  }
  const name = path.basename(file);
  const headers = { authorization: `Bearer ${token}` };
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const elapsed = () => performance.now() - started;
  const cpuMs = () => {
    const used = process.cpuUsage(cpuStarted);
    return (used.user + used.system) / 1000;
  };
  const result = (outcome: Outcome, error?: string): FileResult => ({ file, bytes: size, outcome, latencyMs: elapsed(), cpuMs: cpuMs(), error });

  let response: { status: number; body: unknown };
  try {
    response = await postFile(`${baseUrl}/v1/projects/${projectId}/structures`, { ...headers, prefer: 'wait=60' }, file, name, size, signal);
  } catch (error) {
    return result('failed', `upload request failed: ${(error as Error).message}`);
  }
  const body = response.body as { upload?: { id: string }; error?: { code?: string; message?: string } } | undefined;
  if (response.status === 201) return result('stored');
  if (response.status !== 202 || !body?.upload?.id) {
    // Refused at once (415 unknown format, 422 empty...) is the file's fault; anything else is molvault's.
    const outcome = response.status >= 400 && response.status < 500 ? 'rejected' : 'failed';
    return result(outcome, `HTTP ${response.status} ${errorText(body?.error, 'no error body')}`);
  }

  const uploadId = body.upload.id;
  for (;;) {
    let poll: Response;
    try {
      poll = await fetch(`${baseUrl}/v1/uploads/${uploadId}`, { headers, signal });
    } catch (error) {
      return result('failed', `polling the upload failed: ${(error as Error).message}`);
    }
    const upload = (await poll.json().catch(() => undefined)) as UploadState | undefined;
    if (poll.status !== 200 || !upload) return result('failed', `GET /v1/uploads/${uploadId} answered ${poll.status}`);
    if (upload.state === 'stored' && upload.searchable) return result('stored');
    if (upload.state === 'rejected' || upload.state === 'failed') return result(upload.state, errorText(upload.error, `upload ${upload.state}`));
    if (elapsed() > timeoutMs)
      return result(
        'failed',
        `timed out: still "${upload.state}"${upload.state === 'stored' ? ' (not yet searchable)' : ''} after ${Math.round(timeoutMs / 1000)} s`,
      );
    if (signal.aborted) return result('failed', 'interrupted');
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function report(
  options: { corpus: string[]; concurrency: number },
  stack: { postgresSource: string; redisUrl: string },
  startupMs: number,
  wallMs: number,
  results: FileResult[],
) {
  const count = (outcome: Outcome) => results.filter((r) => r.outcome === outcome);
  const stored = count('stored');
  const rejected = count('rejected');
  const failed = count('failed');
  const totalBytes = results.reduce((sum, r) => sum + r.bytes, 0);
  const storedLatencies = stored.map((r) => r.latencyMs).sort((a, b) => a - b);
  const wallS = wallMs / 1000;
  const ms = (value: number) => (Number.isNaN(value) ? 'n/a' : `${Math.round(value)} ms`);
  const relative = (file: string) => path.relative(REPO_ROOT, file);
  const lines = [
    '',
    'molvault ingest benchmark',
    '=========================',
    `corpus:           ${options.corpus.map(relative).join(', ')}`,
    `concurrency:      ${options.concurrency} uploads in flight`,
    `services:         Postgres ${stack.postgresSource}, Redis ${stack.redisUrl}; stack started in ${(startupMs / 1000).toFixed(1)} s`,
    '',
    `files:            ${results.length}`,
    `  stored:         ${stored.length}`,
    `  rejected:       ${rejected.length}`,
    `  failed:         ${failed.length}`,
    `total size:       ${formatMB(totalBytes)} MB (1 MB = 10^6 bytes)`,
    `wall time:        ${wallS.toFixed(2)} s (first upload start → last file done)`,
    `throughput:       ${(results.length / wallS).toFixed(2)} files/s, ${(totalBytes / MB / wallS).toFixed(2)} MB/s`,
    '',
    `upload → searchable latency (${stored.length} stored files):`,
    `  p50:            ${ms(percentile(storedLatencies, 50))}`,
    `  p95:            ${ms(percentile(storedLatencies, 95))}`,
    `  max:            ${ms(storedLatencies[storedLatencies.length - 1] ?? Number.NaN)}`,
  ];
  const slowest = [...stored].sort((a, b) => b.latencyMs - a.latencyMs).slice(0, 5);
  if (slowest.length) {
    lines.push('  slowest:');
    for (const r of slowest) lines.push(`    ${ms(r.latencyMs).padStart(9)}  ${formatMB(r.bytes).padStart(6)} MB  ${relative(r.file)}`);
  }
  for (const [title, list] of [
    ['rejected files', rejected],
    ['failed files', failed],
  ] as const) {
    if (!list.length) continue;
    lines.push('', `${title}:`);
    for (const r of list) lines.push(`  ${relative(r.file)} (${ms(r.latencyMs)}): ${r.error}`);
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

const GEMMI_READ = path.join(REPO_ROOT, 'bench/support/gemmi_read.py');
const LARGE_BYTES = 10 * MB;

/** The large stored files: those compared with gemmi. */
const largeStored = (results: FileResult[]) => results.filter((r) => r.outcome === 'stored' && r.bytes >= LARGE_BYTES);

/**
 * Uploads a copy of each large stored file `repeat` times, one at a time, each with a comment line
 * of its own first (PDB: a REMARK record; otherwise a `#` line, which mmCIF reads as a comment), so
 * its content is new to the project. Returns each file's repeats' results.
 */
async function uploadRepeats(
  url: string,
  token: string,
  projectId: string,
  large: FileResult[],
  repeat: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Map<string, FileResult[]>> {
  const repeats = new Map<string, FileResult[]>();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-ingest-'));
  try {
    for (const r of large) {
      const results: FileResult[] = [];
      for (let i = 1; i <= repeat && !signal.aborted; i++) {
        const copy = path.join(dir, path.basename(r.file));
        await fs.writeFile(copy, commentLine(/\.(pdb|ent)$/i.test(r.file) ? 'pdb' : 'cif', `molvault bench:ingest copy ${i}`));
        await pipeline(createReadStream(r.file), createWriteStream(copy, { flags: 'a' }));
        results.push(await ingestOne(url, token, projectId, copy, timeoutMs, signal));
        await fs.rm(copy, { force: true });
      }
      repeats.set(r.file, results);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return repeats;
}

interface GemmiRead {
  seconds: number;
  cpuSeconds: number;
}

/**
 * gemmi.read_structure on a file, best of 2. It is read before the uploads as well as after them:
 * after them the machine may still be writing the uploads' gigabyte out, which slowed gemmi's read
 * markedly (bench/README.md); the better of the two is its figure.
 */
function gemmiRead(file: string): GemmiRead | undefined {
  const run = spawnSync('/usr/bin/python3', [GEMMI_READ, '2', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return run.status === 0 ? (JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as GemmiRead) : undefined;
}

/** Each large stored file's upload → searchable latency against gemmi.read_structure on the same file (goal: within 2×). */
function compareWithGemmi(results: FileResult[], repeats: Map<string, FileResult[]>, before: Map<string, GemmiRead | undefined>) {
  const large = largeStored(results);
  if (large.length === 0) {
    process.stdout.write('--gemmi: no stored file of 10 MB or more to compare\n');
    return;
  }
  process.stdout.write(
    `upload → searchable against gemmi.read_structure (best of 2 before the uploads and 2 after them; load average ${os.loadavg()[0].toFixed(1)}):\n`,
  );
  for (const r of large) {
    const after = gemmiRead(r.file);
    const earlier = before.get(r.file);
    const gemmi = earlier && after ? (earlier.seconds <= after.seconds ? earlier : after) : (earlier ?? after);
    if (!gemmi) {
      process.stdout.write(`  ${path.relative(REPO_ROOT, r.file)}: gemmi could not read it (python3-gemmi missing?)\n`);
      continue;
    }
    const verdict = (latencyMs: number) => {
      const ratio = latencyMs / 1000 / gemmi.seconds;
      return `${ratio.toFixed(2)}× (goal ≤ 2×: ${ratio <= 2 ? 'met' : 'NOT met'})`;
    };
    const copies = (repeats.get(r.file) ?? []).filter((copy) => copy.outcome === 'stored');
    const best = copies.reduce<FileResult | undefined>((a, b) => (a && a.latencyMs <= b.latencyMs ? a : b), undefined);
    const seconds = (x: FileResult) => `${(x.latencyMs / 1000).toFixed(2)} s (process CPU meanwhile ${(x.cpuMs / 1000).toFixed(2)} s)`;
    process.stdout.write(
      `  ${path.relative(REPO_ROOT, r.file)} (${formatMB(r.bytes)} MB): gemmi.read_structure ${gemmi.seconds.toFixed(2)} s wall, ${gemmi.cpuSeconds.toFixed(2)} s CPU (before the uploads ${earlier ? `${earlier.seconds.toFixed(2)} s` : 'n/a'}, after them ${after ? `${after.seconds.toFixed(2)} s` : 'n/a'})\n`,
    );
    if (best) {
      process.stdout.write(
        `    searchable after ${seconds(best)}, the best of ${copies.length} copies uploaded after it (${copies.map((c) => (c.latencyMs / 1000).toFixed(2)).join(', ')} s) → ${verdict(best.latencyMs)}\n`,
      );
    }
    process.stdout.write(
      `    the first upload, to a fresh server${best ? ' (the method before 2026-12-08)' : ''}: searchable after ${seconds(r)} → ${verdict(r.latencyMs)}\n`,
    );
  }
}

async function main() {
  const options = parseOptions();
  const files = await listFiles(options.corpus);
  if (files.length === 0) throw new Error(`no files in ${options.corpus.join(', ')}`);
  const gemmiBefore = new Map<string, GemmiRead | undefined>();
  if (options.gemmi) for (const file of files) if ((await fs.stat(file)).size >= LARGE_BYTES) gemmiBefore.set(file, gemmiRead(file));

  const startupStarted = performance.now();
  process.stderr.write(`starting an in-process molvault (scratch database, queues and data dir)...\n`);
  const stack = await startBenchStack({ workerQueues: [...QUEUE_NAMES] });
  // On Ctrl-C the lanes stop first (no new uploads, no more polling), then everything is removed.
  const interrupted = new AbortController();
  stopOnSignals(stack.stop, () => interrupted.abort());
  let exitCode = 0;
  try {
    const { token } = await createBenchUser(stack.ctx, 1024 ** 4);
    const projectId = await createProject(stack.url, token, `ingest benchmark ${new Date().toISOString()}`);
    const startupMs = performance.now() - startupStarted;
    process.stderr.write(`molvault at ${stack.url}; uploading ${files.length} files, ${options.concurrency} at a time...\n`);

    // A fixed number of lanes pull the next file from a shared cursor: N uploads always in flight.
    const results: FileResult[] = [];
    let next = 0;
    const wallStarted = performance.now();
    const lane = async () => {
      while (next < files.length && !interrupted.signal.aborted) {
        const file = files[next++];
        const result = await ingestOne(stack.url, token, projectId, file, options.timeoutMs, interrupted.signal);
        results.push(result);
        if (result.outcome !== 'stored') process.stderr.write(`  ${result.outcome}: ${path.basename(file)}\n`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, files.length) }, lane));
    const wallMs = performance.now() - wallStarted;
    if (interrupted.signal.aborted) {
      exitCode = 130; // no report for a partial run
    } else {
      results.sort((a, b) => a.file.localeCompare(b.file));
      report(options, { postgresSource: stack.postgresSource, redisUrl: stack.ctx.config.redisUrl }, startupMs, wallMs, results);
      if (options.gemmi) {
        const repeats = await uploadRepeats(stack.url, token, projectId, largeStored(results), options.repeat, options.timeoutMs, interrupted.signal);
        compareWithGemmi(results, repeats, gemmiBefore);
      }
      if (results.some((r) => r.outcome === 'failed')) exitCode = 1;
    }
  } finally {
    process.stderr.write('cleaning up (workers, API, queues, database, services, data dir)...\n');
    await stack.stop();
  }
  // Piscina threads, pg pools and ioredis are closed above; exit explicitly in case a library keeps a timer alive.
  process.exit(exitCode);
}

main().catch((error) => {
  // Bad options get their message alone; anything else its stack.
  process.stderr.write(
    `bench:ingest failed: ${error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (error as Error).message : ((error as Error).stack ?? error)}\n`,
  );
  process.exit(1);
});
