/**
 * Where the time of one upload goes: uploads small corpus PDB files one at a time with
 * `Prefer: wait` and prints, per pipeline stage, the median and p95 of the time spent waiting
 * in the queue and running, from the jobs' own timestamps. For finding what to speed up.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUEUE_NAMES } from '../src/config/index.js';
import { UPLOAD_JOBS } from '../src/queue/jobs.js';
import { quantile } from './support/figures.js';
import { createBenchUser, createProject, startBenchStack, stopOnSignals } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = path.resolve(REPO_ROOT, '../shared/corpus/pdb');
const STAGES = UPLOAD_JOBS.map((contract) => contract.name);

const stack = await startBenchStack({ workerQueues: QUEUE_NAMES });
stopOnSignals(stack.stop);
try {
  const { token } = await createBenchUser(stack.ctx, 1e12);
  const project = await createProject(stack.url, token, 'stages');
  const files = (await fs.readdir(CORPUS)).filter((f) => !f.endsWith('.gz')).sort();
  const columns: Record<string, number[]> = { accept: [], total: [], respond: [] };
  for (const stage of STAGES) {
    columns[`${stage} wait`] = [];
    columns[`${stage} run`] = [];
  }
  for (const file of files) {
    const bytes = await fs.readFile(path.join(CORPUS, file));
    if (bytes.length > 200_000) continue; // small files: the fixed costs are what this measures
    const form = new FormData();
    form.append('file', new Blob([bytes]), file);
    const started = Date.now();
    const response = await fetch(`${stack.url}/v1/projects/${project}/structures`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, prefer: 'wait=30' },
      body: form,
    });
    const body = (await response.json()) as { upload?: { id: string } };
    const ended = Date.now();
    if (response.status !== 201 || !body.upload) continue;
    // The upload's own ids: the structure id only matters to index jobs not made by an upload.
    const data = { uploadId: body.upload.id, ownerId: '', structureId: '' };
    const [ingest] = UPLOAD_JOBS;
    const first = await stack.ctx.queues[ingest.queue].getJob(ingest.jobId(data));
    let previous = first?.timestamp ?? started;
    columns.accept.push(previous - started);
    for (const contract of UPLOAD_JOBS) {
      const stage = contract.name;
      const job = await stack.ctx.queues[contract.queue].getJob(contract.jobId(data));
      if (!job?.processedOn || !job.finishedOn) continue;
      columns[`${stage} wait`].push(job.processedOn - Math.max(previous, job.timestamp));
      columns[`${stage} run`].push(job.finishedOn - job.processedOn);
      previous = job.finishedOn;
    }
    columns.respond.push(ended - previous);
    columns.total.push(ended - started);
  }
  console.log(`molvault pipeline stages (${columns.total.length} small PDB files, one at a time, ms)`);
  console.log(`${'stage'.padEnd(16)}${'median'.padStart(8)}${'p95'.padStart(8)}`);
  for (const [name, values] of Object.entries(columns)) {
    console.log(`${name.padEnd(16)}${quantile(values, 0.5).toFixed(0).padStart(8)}${quantile(values, 0.95).toFixed(0).padStart(8)}`);
  }
} finally {
  await stack.stop();
}
process.exit(0);
