/**
 * A 1 MB download through a signed URL (no header; the signer's access checked on every request)
 * against the same download with a bearer token, on one server: latency per request seen by the
 * client (p50, p95) and the process's CPU per request (server and client share the process, and
 * the client's part is the same for both). Rounds alternate between the two so drift hits both.
 * `npm run bench:signed [requests per round] [rounds]`
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUEUE_NAMES } from '../src/config/index.js';
import { multiModelPdb, quantile } from './support/figures.js';
import { createBenchUser, createProject, startBenchStack, stopOnSignals } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REQUESTS = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 6);
const SIZE = 1_000_000;

const stack = await startBenchStack({ workerQueues: QUEUE_NAMES });
stopOnSignals(stack.stop);
try {
  const { token } = await createBenchUser(stack.ctx, 1e12);
  const auth = { authorization: `Bearer ${token}` };
  const project = await createProject(stack.url, token, 'signed');
  const file = multiModelPdb(await fs.readFile(path.join(REPO_ROOT, 'test/fixtures/ngl_1crn.pdb'), 'latin1'), SIZE);
  const form = new FormData();
  form.append('file', new Blob([file as Uint8Array<ArrayBuffer>]), 'big.pdb');
  const stored = await fetch(`${stack.url}/v1/projects/${project}/structures`, { method: 'POST', headers: { ...auth, prefer: 'wait=120' }, body: form });
  if (stored.status !== 201) throw new Error(`upload answered ${stored.status}: ${await stored.text()}`);
  const id = ((await stored.json()) as { structure: { id: string } }).structure.id;
  const issued = await fetch(`${stack.url}/v1/structures/${id}/download-url?expiresIn=1d`, { headers: auth });
  const signedUrl = ((await issued.json()) as { url: string }).url;

  const ways: Record<string, () => Promise<Response>> = {
    bearer: () => fetch(`${stack.url}/v1/structures/${id}/download`, { headers: auth }),
    signed: () => fetch(signedUrl),
  };
  const results: Record<string, { ms: number[]; cpuUs: number }> = { bearer: { ms: [], cpuUs: 0 }, signed: { ms: [], cpuUs: 0 } };
  const once = async (way: string) => {
    const started = performance.now();
    const response = await ways[way]();
    const body = await response.arrayBuffer();
    if (response.status !== 200 || body.byteLength !== file.length) throw new Error(`${way} answered ${response.status} with ${body.byteLength} bytes`);
    return performance.now() - started;
  };
  for (const way of Object.keys(ways)) for (let i = 0; i < 20; i++) await once(way); // warm up
  for (let round = 0; round < ROUNDS; round++) {
    for (const way of round % 2 === 0 ? ['bearer', 'signed'] : ['signed', 'bearer']) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < REQUESTS; i++) results[way].ms.push(await once(way));
      const used = process.cpuUsage(cpu);
      results[way].cpuUs += used.user + used.system;
    }
  }
  console.log(`1 download = ${file.length} bytes; ${ROUNDS} alternating rounds of ${REQUESTS} sequential requests each; Postgres: ${stack.postgresSource}`);
  for (const [way, r] of Object.entries(results)) {
    const n = r.ms.length;
    console.log(
      `${way.padEnd(7)} p50 ${quantile(r.ms, 0.5).toFixed(2)} ms  p95 ${quantile(r.ms, 0.95).toFixed(2)} ms  mean ${(r.ms.reduce((a, b) => a + b, 0) / n).toFixed(2)} ms  CPU ${(r.cpuUs / n / 1000).toFixed(2)} ms/request (process: server + client)`,
    );
  }
} finally {
  await stack.stop();
}
