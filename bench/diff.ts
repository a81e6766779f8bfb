/**
 * Structure-aware diff, first as the task function in this process (molvault's readers, and Mol*'s
 * readers only for comparison), then through the HTTP API: for PDB/mmCIF pairs of the same entry and for a
 * rigidly moved copy of the 1FFK ribosome, how long the diff job takes, what the first and the
 * cached request cost, and whether the API stays responsive meanwhile (latency of an
 * authenticated GET probed every 20 ms while the diff runs, against the same probe at rest).
 * Peer reference: `gemmi contents` reading the same two files (gemmi has no structure diff; this
 * is the cost of a careful C++ reader merely reading both inputs).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUEUE_NAMES } from '../src/config/index.js';
import { DEFAULT_DIFF_OPTIONS, diffStructures } from '../src/formats/diff.js';
import { diff as diffTask } from '../src/pool/tasks.js';
import { quantile } from './support/figures.js';
import { createBenchUser, createProject, startBenchStack, stopOnSignals } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = path.resolve(REPO_ROOT, '../shared/corpus');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function translatePdb(pdb: string, [dx, dy, dz]: [number, number, number]): string {
  const field = (value: number) => value.toFixed(3).padStart(8);
  return pdb
    .split('\n')
    .map((line) => {
      if (!line.startsWith('ATOM  ') && !line.startsWith('HETATM')) return line;
      const x = Number(line.slice(30, 38)) + dx;
      const y = Number(line.slice(38, 46)) + dy;
      const z = Number(line.slice(46, 54)) + dz;
      return `${line.slice(0, 30)}${field(x)}${field(y)}${field(z)}${line.slice(54)}`;
    })
    .join('\n');
}

function gemmiReadMs(files: string[]): number | undefined {
  try {
    const started = performance.now();
    for (const file of files) execFileSync('gemmi', ['contents', file], { stdio: 'ignore' });
    return performance.now() - started;
  } catch {
    return undefined;
  }
}

try {
  await fs.access(CORPUS);
} catch {
  console.error(`bench:diff needs the corpus at ${CORPUS}`);
  process.exit(2);
}
const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-diff-'));
const ffkCif = path.join(CORPUS, 'cif/pymmcif_1ffk.cif');
const ffkPdb = path.join(scratch, '1ffk.pdb');
const ffkMoved = path.join(scratch, '1ffk-moved.pdb');
let havePdb = true;
try {
  execFileSync('gemmi', ['convert', '--to=pdb', ffkCif, ffkPdb], { stdio: 'ignore' });
  await fs.writeFile(ffkMoved, translatePdb(await fs.readFile(ffkPdb, 'latin1'), [1, 2, 2]), 'latin1');
} catch {
  havePdb = false;
}
const pairs: [string, string, string][] = [
  ['4HHB pdb → cif', path.join(CORPUS, 'pdb/chemfiles_4hhb.pdb'), path.join(CORPUS, 'cif/chemfiles_4hhb.cif')],
  ['2XHE pdb → cif', path.join(CORPUS, 'pdb/biopython_2XHE.pdb'), path.join(CORPUS, 'cif/biopython_2XHE.cif')],
  ...(havePdb
    ? ([
        ['1FFK cif → pdb (gemmi)', ffkCif, ffkPdb],
        ['1FFK pdb → moved (1,2,2)', ffkPdb, ffkMoved],
      ] as [string, string, string][])
    : []),
];

// The diff task itself, in this process (warm, best of 3): as the pool runs it, and through Mol*'s
// readers only (what the job did before PDB got its byte-level reader).
console.log('In-process diff task (best of 3, warm): CPU ms per diff');
console.log(`${'pair'.padEnd(26)}${'molvault'.padStart(10)}${'Mol* only'.padStart(11)}${'gemmi read'.padStart(12)}`);
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const formatOf = (file: string) => (file.endsWith('.cif') ? 'cif' : 'pdb') as 'cif' | 'pdb';
for (const [label, a, b] of pairs) {
  const task = { from: { path: a, format: formatOf(a) }, to: { path: b, format: formatOf(b) }, options: DEFAULT_DIFF_OPTIONS };
  const bestOf = async (run: () => Promise<unknown>) => {
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 3; r++) {
      const started = cpuMs();
      await run();
      best = Math.min(best, cpuMs() - started);
    }
    return best;
  };
  const fast = await bestOf(() => diffTask(task));
  const reference = await bestOf(async () =>
    diffStructures({ bytes: await fs.readFile(a), format: task.from.format }, { bytes: await fs.readFile(b), format: task.to.format }, DEFAULT_DIFF_OPTIONS, {
      reference: true,
    }),
  );
  const gemmi = gemmiReadMs([a, b]);
  console.log(
    `${label.padEnd(26)}${fast.toFixed(0).padStart(10)}${reference.toFixed(0).padStart(11)}${(gemmi === undefined ? 'n/a' : gemmi.toFixed(0)).padStart(12)}`,
  );
}
console.log('');

const stack = await startBenchStack({ workerQueues: QUEUE_NAMES });
stopOnSignals(async () => {
  await stack.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});
try {
  const { token } = await createBenchUser(stack.ctx, 1e12);
  const auth = { authorization: `Bearer ${token}` };
  const project = await createProject(stack.url, token, 'diff bench');
  const upload = async (url: string, file: string) => {
    const form = new FormData();
    form.append('file', new Blob([await fs.readFile(file)]), path.basename(file));
    const response = await fetch(`${stack.url}${url}`, { method: 'POST', headers: { ...auth, prefer: 'wait=60' }, body: form });
    const body = (await response.json()) as { structure: { id: string } };
    if (response.status !== 201) throw new Error(`upload of ${file} answered ${response.status}: ${JSON.stringify(body)}`);
    return body.structure.id;
  };
  /** GETs the project every 20 ms until stopped; returns the latencies. */
  const probe = () => {
    const latencies: number[] = [];
    let running = true;
    const done = (async () => {
      while (running) {
        const started = performance.now();
        await (await fetch(`${stack.url}/v1/projects/${project}`, { headers: auth })).arrayBuffer();
        latencies.push(performance.now() - started);
        await sleep(20);
      }
    })();
    return {
      stop: async () => {
        running = false;
        await done;
        return latencies;
      },
    };
  };

  const rest = probe();
  await sleep(2000);
  const atRest = await rest.stop();
  console.log(`API probe at rest: p50 ${quantile(atRest, 0.5).toFixed(1)} ms, p99 ${quantile(atRest, 0.99).toFixed(1)} ms (${atRest.length} requests)\n`);
  console.log(
    `${'pair'.padEnd(26)}${'atoms'.padStart(8)}${'job ms'.padStart(8)}${'wall ms'.padStart(9)}${'cached'.padStart(8)}${'probe p50'.padStart(11)}${'p99'.padStart(7)}${'max'.padStart(7)}${'gemmi read'.padStart(12)}  result`,
  );
  for (const [label, a, b] of pairs) {
    const id = await upload(`/v1/projects/${project}/structures`, a);
    await upload(`/v1/structures/${id}/versions`, b);
    const busy = probe();
    const started = performance.now();
    let response = await fetch(`${stack.url}/v1/structures/${id}/diff`, { headers: auth });
    while (response.status === 202) {
      await response.arrayBuffer();
      await sleep(100);
      response = await fetch(`${stack.url}/v1/structures/${id}/diff`, { headers: auth });
    }
    const wall = performance.now() - started;
    const during = await busy.stop();
    const body = (await response.json()) as { computeMs: number; structural: { atoms: { from: number }; rmsd: number; structurallyIdentical: boolean } };
    if (response.status !== 200) throw new Error(`diff answered ${response.status}: ${JSON.stringify(body)}`);
    const cachedStart = performance.now();
    await (await fetch(`${stack.url}/v1/structures/${id}/diff`, { headers: auth })).arrayBuffer();
    const cached = performance.now() - cachedStart;
    const gemmi = gemmiReadMs([a, b]);
    const s = body.structural;
    console.log(
      `${label.padEnd(26)}${String(s.atoms.from).padStart(8)}${String(body.computeMs).padStart(8)}${wall.toFixed(0).padStart(9)}${cached.toFixed(0).padStart(8)}${quantile(during, 0.5).toFixed(1).padStart(11)}${quantile(during, 0.99).toFixed(1).padStart(7)}${Math.max(
        ...during,
      )
        .toFixed(0)
        .padStart(7)}${(gemmi === undefined ? 'n/a' : gemmi.toFixed(0)).padStart(12)}  ${s.structurallyIdentical ? 'identical' : `rmsd ${s.rmsd}`}`,
    );
  }
  console.log(
    '\njob ms: the diff job (both files read, PDB by the byte-level reader and the rest by Mol*; atoms matched) in the piscina pool; wall: first request to 200, polling every 100 ms;\ncached: a repeated request; probe: an authenticated GET every 20 ms while the diff ran; gemmi read: `gemmi contents` on both files.',
  );
} finally {
  await stack.stop();
  await fs.rm(scratch, { recursive: true, force: true });
}
process.exit(0);
