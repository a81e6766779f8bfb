/**
 * Conversion benchmark: PDB → mmCIF of a large structure through molvault's HTTP API, next to
 * `gemmi convert` run directly on the same file in the same run.
 *
 *   npm run bench:convert -- [--file PDB] [--gemmi-runs N]
 *
 * The file defaults to ../large/1M4X_capsid8x28.pdb (make it with ../shared/corpus/large/README.md).
 * It is uploaded first (not timed); then the clock runs from sending
 * `GET /v1/structures/:id/download?format=cif` with `Prefer: wait=60` until the last byte of the
 * converted file has arrived. molvault's overhead is that time minus gemmi's own time (median of
 * the direct runs): queueing, the engine pool, parsing and checking the output, the loss report,
 * hashing, storing the blob and its Derivation row, and sending the bytes.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QUEUE_NAMES } from '../src/config/index.js';
import { convertJob } from '../src/queue/jobs.js';
import { createBenchUser, createProject, formatMB, startBenchStack, stopOnSignals, UsageError } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_FILE = path.resolve(REPO_ROOT, '../large/1M4X_capsid8x28.pdb');

function parseOptions() {
  const { values } = parseArgs({ options: { file: { type: 'string', default: DEFAULT_FILE }, 'gemmi-runs': { type: 'string', default: '3' } } });
  const gemmiRuns = Number(values['gemmi-runs']);
  if (!Number.isInteger(gemmiRuns) || gemmiRuns < 1) throw new UsageError(`--gemmi-runs must be a whole number ≥ 1, not "${values['gemmi-runs']}"`);
  return { file: path.resolve(values.file as string), gemmiRuns };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** `gemmi convert` on the file, as a user would run it: wall time of the whole process. */
async function gemmiDirect(file: string, output: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('gemmi', ['convert', '--from=pdb', '--to=mmcif', file, output], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`gemmi convert exited with ${code}`))));
  });
  return performance.now() - started;
}

async function main() {
  const options = parseOptions();
  const stat = await fs.stat(options.file).catch(() => {
    throw new UsageError(`${options.file} does not exist; make it with the recipe in ../shared/corpus/large/README.md, or pass --file`);
  });
  const gemmiVersion = execFileSync('gemmi', ['--version'], { encoding: 'utf8' }).trim();
  const stack = await startBenchStack({ workerQueues: QUEUE_NAMES, env: { MAX_UPLOAD_BYTES: '4GiB' } });
  stopOnSignals(stack.stop);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-convert-'));
  try {
    const { token } = await createBenchUser(stack.ctx, 100 * 1024 ** 3);
    const projectId = await createProject(stack.url, token, 'bench convert');
    const auth = { authorization: `Bearer ${token}` };
    console.log(`file: ${options.file} (${formatMB(stat.size)} MB); ${gemmiVersion}; ${os.availableParallelism()} cores, load ${os.loadavg()[0].toFixed(1)}`);

    // Upload (not timed): the conversion starts from a stored, validated version.
    const uploadStarted = performance.now();
    const form = new FormData();
    form.append('file', new Blob([await fs.readFile(options.file)]), path.basename(options.file));
    const uploaded = await fetch(`${stack.url}/v1/projects/${projectId}/structures`, { method: 'POST', headers: { ...auth, prefer: 'wait=60' }, body: form });
    const body = (await uploaded.json()) as { upload: { id: string }; structure: { id: string } };
    for (let state = uploaded.status === 201 ? 'stored' : 'received'; state !== 'stored'; ) {
      await new Promise((r) => setTimeout(r, 500));
      const upload = (await (await fetch(`${stack.url}/v1/uploads/${body.upload.id}`, { headers: auth })).json()) as {
        state: string;
        searchable: boolean;
        error?: unknown;
      };
      if (upload.state === 'rejected' || upload.state === 'failed') throw new Error(`the upload was ${upload.state}: ${JSON.stringify(upload.error)}`);
      if (upload.state === 'stored' && upload.searchable) state = 'stored';
    }
    console.log(`upload stored in ${seconds(performance.now() - uploadStarted)} (not part of the comparison)`);

    const gemmiTimes: number[] = [];
    gemmiTimes.push(await gemmiDirect(options.file, path.join(scratch, 'direct.cif')));

    // Through the API: request → last byte of the converted file.
    const started = performance.now();
    let response = await fetch(`${stack.url}/v1/structures/${body.structure.id}/download?format=cif`, { headers: { ...auth, prefer: 'wait=60' } });
    while (response.status === 202) {
      await response.body?.cancel();
      await new Promise((r) => setTimeout(r, 200));
      response = await fetch(`${stack.url}/v1/structures/${body.structure.id}/download?format=cif`, { headers: { ...auth, prefer: 'wait=60' } });
    }
    if (response.status !== 200) throw new Error(`the download answered ${response.status}: ${await response.text()}`);
    let received = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) received += chunk.length;
    const apiMs = performance.now() - started;

    for (let i = 1; i < options.gemmiRuns; i++) gemmiTimes.push(await gemmiDirect(options.file, path.join(scratch, 'direct.cif')));
    const directSize = (await fs.stat(path.join(scratch, 'direct.cif'))).size;

    const jobs = await stack.ctx.queues[convertJob.queue].getJobs(['completed']);
    const job = jobs[0];
    const result = job?.returnvalue as {
      engine: string;
      engineVersion: string;
      timings?: { engineMs: number; checkMs: number; storeMs: number };
      loss: unknown;
    };
    const gemmiMs = median(gemmiTimes);
    const overhead = apiMs - gemmiMs;

    console.log('');
    console.log(
      `gemmi convert directly:      ${seconds(gemmiMs)} (median of ${gemmiTimes.length}: ${gemmiTimes.map(seconds).join(', ')}), ${formatMB(directSize)} MB written`,
    );
    console.log(
      `molvault API (request → last byte): ${seconds(apiMs)}, ${formatMB(received)} MB received, engine ${response.headers.get('x-molvault-engine')}`,
    );
    if (job?.processedOn && job.finishedOn && result?.timings) {
      const t = result.timings;
      const queued = job.processedOn - job.timestamp;
      const afterJob = apiMs - (job.finishedOn - job.timestamp);
      console.log('  where the API time went:');
      console.log(`    queue wait (request → job starts)        ${seconds(queued)}`);
      console.log(`    engine (gemmi inside the pool)           ${seconds(t.engineMs)}`);
      console.log(`    parse + check output, hash, loss report  ${seconds(t.checkMs)}`);
      console.log(`    store blob + Derivation row              ${seconds(t.storeMs)}`);
      console.log(`    job end → last byte received             ${seconds(afterJob)}`);
    }
    console.log(`  loss report header: ${response.headers.get('x-molvault-conversion-loss')}`);
    console.log('');
    console.log(
      `molvault overhead beyond the conversion itself: ${seconds(overhead)} = ${((overhead / gemmiMs) * 100).toFixed(0)}% of gemmi's time (goal: under 20%)`,
    );
    if (result?.timings) {
      const withoutCheck = overhead - result.timings.checkMs;
      console.log(
        `  of which parsing and checking the output (required before it is stored): ${seconds(result.timings.checkMs)}; without it the overhead would be ${seconds(withoutCheck)} = ${((withoutCheck / gemmiMs) * 100).toFixed(0)}%`,
      );
    }
    console.log('(the machine is shared: other work running at the same time inflates both sides)');
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
    await stack.stop();
  }
}

main().catch((error) => {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
