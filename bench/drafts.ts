/**
 * Autosave cost: how long `PUT /v1/structures/:id/draft` takes for a few-MB structure and for a
 * larger LZ4-framed ChimeraX session, against the peer path a client would otherwise use, a new
 * version through the whole pipeline (`POST /versions` with `Prefer: wait`), on the same files.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compress as lz4Frame } from 'lz4js';
import { QUEUE_NAMES } from '../src/config/index.js';
import { multiModelPdb, quantile } from './support/figures.js';
import { createBenchUser, createProject, formatMB, startBenchStack, stopOnSignals } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.argv[2] ?? 15);

/** A multi-model PDB of about `bytes` (crambin's atoms repeated as models), each round's copy made distinct. */
const bigPdb = (base: string, bytes: number, round: number) => multiModelPdb(base, bytes, `ROUND ${round}`);

const stack = await startBenchStack({ workerQueues: QUEUE_NAMES });
stopOnSignals(stack.stop);
try {
  const { token } = await createBenchUser(stack.ctx, 1e12);
  const auth = { authorization: `Bearer ${token}` };
  const project = await createProject(stack.url, token, 'drafts');
  const base = await fs.readFile(path.join(REPO_ROOT, 'test/fixtures/ngl_1crn.pdb'), 'latin1');

  const create = async (name: string, bytes: Uint8Array) => {
    const form = new FormData();
    form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
    const response = await fetch(`${stack.url}/v1/projects/${project}/structures`, { method: 'POST', headers: { ...auth, prefer: 'wait=60' }, body: form });
    if (response.status !== 201) throw new Error(`upload of ${name} answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { structure: { id: string } }).structure.id;
  };
  const timeDraft = async (id: string, bytes: Uint8Array) => {
    const started = performance.now();
    const response = await fetch(`${stack.url}/v1/structures/${id}/draft`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: bytes as Uint8Array<ArrayBuffer>,
    });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`draft answered ${response.status}`);
    return performance.now() - started;
  };
  const timeVersion = async (id: string, name: string, bytes: Uint8Array) => {
    const form = new FormData();
    form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
    const started = performance.now();
    const response = await fetch(`${stack.url}/v1/structures/${id}/versions`, { method: 'POST', headers: { ...auth, prefer: 'wait=60' }, body: form });
    await response.arrayBuffer();
    if (response.status !== 201) throw new Error(`version answered ${response.status}`);
    return performance.now() - started;
  };

  const pdbSize = 3_000_000;
  const structureId = await create('big.pdb', bigPdb(base, pdbSize, 0));
  const sessionHeader = Buffer.from('# ChimeraX Session version 3\n');
  // Coordinates with noise compress like real session data (about 2:1), unlike repeated models.
  const noisy = (round: number) =>
    Buffer.from(
      bigPdb(base, 20_000_000, round)
        .toString('latin1')
        .replace(/\d\.\d{3}/g, () => (Math.random() * 9).toFixed(3)),
      'latin1',
    );
  const session = (round: number) => Buffer.from(lz4Frame(Buffer.concat([sessionHeader, noisy(round)])));
  const sessionId = await create('view.cxs', session(0));

  const rows: [string, number, number[]][] = [];
  // Payloads are made before timing starts: only the requests are measured.
  const rounds = Array.from({ length: ROUNDS }, (_, i) => i + 1);
  const pdbDrafts = rounds.map((round) => bigPdb(base, pdbSize, round));
  const sessionDraftBodies = rounds.map((round) => session(round));
  const versionBodies = rounds.slice(0, 8).map((round) => bigPdb(base, pdbSize, 1000 + round));
  const drafts: number[] = [];
  for (const body of pdbDrafts) drafts.push(await timeDraft(structureId, body));
  rows.push(['draft PUT, PDB', pdbSize, drafts]);
  const sessionDrafts: number[] = [];
  const sessionBytes = sessionDraftBodies[0].length;
  for (const body of sessionDraftBodies) sessionDrafts.push(await timeDraft(sessionId, body));
  rows.push(['draft PUT, LZ4 session', sessionBytes, sessionDrafts]);
  const versions: number[] = [];
  for (const body of versionBodies) versions.push(await timeVersion(structureId, 'big.pdb', body));
  rows.push(['new version (peer), PDB', pdbSize, versions]);

  console.log(`\nautosave vs a new version, ${ROUNDS} rounds (versions: ${Math.min(ROUNDS, 8)}), times in ms from request to answer`);
  console.log(`${'path'.padEnd(28)}${'MB'.padStart(10)}${'p50'.padStart(9)}${'p95'.padStart(9)}${'max'.padStart(9)}`);
  for (const [label, size, times] of rows) {
    console.log(
      `${label.padEnd(28)}${formatMB(size).padStart(10)}${quantile(times, 0.5).toFixed(0).padStart(9)}${quantile(times, 0.95).toFixed(0).padStart(9)}${Math.max(
        ...times,
      )
        .toFixed(0)
        .padStart(9)}`,
    );
  }
} finally {
  await stack.stop();
}
