/**
 * Search benchmark: seeds N structures (synthetic, derived from summaries the real parser makes of
 * corpus files), indexes them with the index job's document builder (`reindexAll`), then runs a
 * fixed mix of queries (full text, typos, prefixes, filtered, faceted, sorted, paged) through the
 * HTTP API with a fixed concurrency and prints p50/p95/p99 latency and queries/s.
 *
 *   npm run bench:search -- [--structures 100000] [--owners 10] [--concurrency 8] [--requests 4000]
 *                           [--warmup 4000] [--backend postgres|typesense] [--keep-database NAME] [--in-process] [--sharing]
 *                           [--compare-sharing ROUNDS]
 *
 * The measured requests follow `--warmup` requests of the same mix, so that what is measured is the
 * service as it runs, not as it starts: a fresh API process is still compiling its hot paths, and a
 * fresh Postgres connection faults in each page of shared memory it touches for the first time. Over
 * 200 warm-up requests, throughput was still rising through the measured run (407 → 637 queries/s
 * from its first second to its last); the warm-up's own figures are printed too.
 *
 * `--keep-database NAME` seeds that database once and keeps it: a later run with the same name (and
 * the same --structures and --owners) skips seeding and indexing and measures straight away.
 *
 * The API under test runs in a process that neither seeded nor indexed, as deployed (workers index):
 * after seeding, this script measures by running itself again on the seeded database. A process that
 * has just built 100,000 documents has its shared code (the Postgres driver's above all) compiled for
 * that work too. `--in-process` measures in the seeding process instead.
 *
 * Structures are spread evenly over `--owners` users (every query is one owner's); `--owners 1`
 * puts them all in one account, the worst case for per-owner indexes.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import type { EntityManager } from '@mikro-orm/postgresql';
import { parseStructure } from '../src/formats/parse.js';
import { sniffFormat } from '../src/formats/sniff.js';
import type { Format, ParseOutcome, StructureSummary } from '../src/formats/types.js';
import type { AppContext } from '../src/runtime/context.js';
import { createSearchIndex } from '../src/search/create.js';
import { createToken } from '../src/services/auth/auth.js';
import { reindexAll } from '../src/services/search/maintenance.js';
import { createBenchUser, startBenchStack, stopOnSignals, UsageError } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = path.resolve(REPO_ROOT, '../shared/corpus');
const FIXTURES = path.resolve(REPO_ROOT, 'test/fixtures');

function parseOptions() {
  const { values } = parseArgs({
    options: {
      structures: { type: 'string', default: '100000' },
      owners: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '8' },
      requests: { type: 'string', default: '4000' },
      warmup: { type: 'string', default: '4000' },
      backend: { type: 'string', default: 'postgres' },
      'keep-database': { type: 'string' },
      'in-process': { type: 'boolean', default: false },
      sharing: { type: 'boolean', default: false },
      'compare-sharing': { type: 'string', default: '0' },
    },
  });
  const whole = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, not "${text}"`);
    return n;
  };
  if (values.backend !== 'postgres' && values.backend !== 'typesense') throw new UsageError(`--backend must be postgres or typesense`);
  const keep = values['keep-database'];
  if (keep !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(keep)) throw new UsageError(`--keep-database must be a plain database name (a-z, 0-9, _)`);
  return {
    structures: whole('structures', values.structures, 1),
    owners: whole('owners', values.owners, 1),
    concurrency: whole('concurrency', values.concurrency, 1),
    requests: whole('requests', values.requests, 1),
    warmup: whole('warmup', values.warmup, 0),
    backend: values.backend as 'postgres' | 'typesense',
    keepDatabase: values['keep-database'],
    inProcess: values['in-process'],
    sharing: values.sharing,
    compareSharing: whole('compare-sharing', values['compare-sharing'], 0),
  };
}

/** A small deterministic PRNG (mulberry32), so every run seeds and queries the same way. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T,
  };
}

const FAMILIES = [
  'kinase',
  'protease',
  'lysozyme',
  'hemoglobin',
  'myoglobin',
  'polymerase',
  'transferase',
  'receptor',
  'antibody',
  'ligase',
  'isomerase',
  'phosphatase',
  'dehydrogenase',
  'synthase',
  'reductase',
  'oxidase',
  'transporter',
  'channel',
  'ubiquitin',
  'integrase',
  'helicase',
  'nuclease',
  'chaperone',
  'crambin',
  'rhodopsin',
  'insulin',
  'trypsin',
  'thrombin',
  'collagen',
  'ferritin',
] as const;
const QUALIFIERS = ['human', 'mouse', 'yeast', 'bacterial', 'mutant', 'apo', 'holo', 'complex', 'domain', 'truncated', 'engineered', 'wild-type'];
const TAGS = [
  'screening-2025',
  'screening-2026',
  'xray',
  'nmr',
  'cryo-em',
  'fragment',
  'lead',
  'hit',
  'docking',
  'md',
  'apo',
  'holo',
  'published',
  'internal',
  'review',
  'approved',
  'rejected',
  'archive',
  'teaching',
  'benchmark',
  'series-a',
  'series-b',
  'series-c',
  'series-d',
  'target-egfr',
  'target-abl',
  'target-jak2',
  'target-brd4',
  'target-hiv',
  'allosteric',
  'covalent',
  'peptide',
  'nanobody',
  'membrane',
  'soluble',
  'mutant',
  'wildtype',
  'high-res',
  'low-res',
  'to-check',
];
const ORGANISMS = [
  'Homo sapiens',
  'Mus musculus',
  'Gallus gallus',
  'Escherichia coli',
  'Saccharomyces cerevisiae',
  'Bos taurus',
  'Rattus norvegicus',
  'Thermus thermophilus',
];
const TYPOS: Record<string, string> = {
  lysozyme: 'lysozme',
  kinase: 'kinsae',
  hemoglobin: 'hemoglobn',
  polymerase: 'polymerse',
  receptor: 'recepter',
  protease: 'protaese',
};

interface Base {
  file: string;
  sha256: string;
  size: number;
  format: Format;
  kind: Extract<ParseOutcome, { ok: true }>['kind'];
  summary: StructureSummary;
}

/** Summaries made by the real parser from corpus files (or the test fixtures when there is no corpus). */
export async function corpusSummaries(): Promise<Base[]> {
  const root = (await fs.stat(CORPUS).catch(() => null)) ? CORPUS : FIXTURES;
  const dirs = root === CORPUS ? ['pdb', 'cif', 'sdf', 'mol2', 'xyz'].map((d) => path.join(root, d)) : [root];
  const bases: Base[] = [];
  for (const dir of dirs) {
    for (const name of (await fs.readdir(dir)).sort()) {
      const file = path.join(dir, name);
      const stat = await fs.stat(file);
      if (!stat.isFile() || stat.size > 700_000) continue;
      let bytes: Buffer = await fs.readFile(file);
      if (name.endsWith('.gz')) bytes = gunzipSync(bytes);
      const sniffed = sniffFormat(bytes.subarray(0, 64 * 1024));
      if (!sniffed.format) continue;
      const outcome = await parseStructure(bytes.toString('latin1'), sniffed.format);
      if (!outcome.ok) continue;
      bases.push({
        file: path.relative(root, file),
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
        format: outcome.format,
        kind: outcome.kind,
        summary: outcome.summary,
      });
    }
  }
  if (bases.length === 0) throw new Error(`no structure in ${root} could be parsed`);
  return bases;
}

/** Inserts users' structures and current versions in bulk, straight into Postgres, as the pipeline would leave them. */
export async function seed(em: EntityManager, owners: { userId: string }[], bases: Base[], total: number) {
  const random = prng(42);
  for (const base of bases) {
    await em.execute(
      `insert into blobs (sha256, size, stored_size, media_type, created_at) values (?, ?, ?, 'application/octet-stream', now()) on conflict do nothing`,
      [base.sha256, base.size, base.size],
    );
  }
  const projects = new Map<string, string[]>();
  for (const { userId } of owners) {
    const ids: string[] = [];
    for (let p = 0; p < 5; p++) {
      const id = randomUUID();
      await em.execute(`insert into projects (id, owner_id, name, created_at, updated_at) values (?, ?, ?, now(), now())`, [id, userId, `project ${p + 1}`]);
      ids.push(id);
    }
    projects.set(userId, ids);
  }
  const start = Date.now() - 2 * 365 * 86400_000;
  const step = (2 * 365 * 86400_000) / total;
  const BATCH = 2000;
  for (let offset = 0; offset < total; offset += BATCH) {
    const structures: unknown[] = [];
    const versions: unknown[] = [];
    for (let i = offset; i < Math.min(total, offset + BATCH); i++) {
      const owner = owners[i % owners.length].userId;
      const base = random.pick(bases);
      const family = random.pick(FAMILIES);
      const qualifier = random.pick(QUALIFIERS);
      const code = `${1 + random.int(9)}${String.fromCharCode(65 + random.int(26))}${String.fromCharCode(65 + random.int(26))}${random.int(10)}`;
      const tags = [...new Set(Array.from({ length: 1 + random.int(4) }, () => random.pick(TAGS)))];
      const scale = 0.5 + random.next() * 1.5;
      const resolution =
        base.kind === 'macromolecule' && random.next() < 0.75
          ? Math.round((base.summary.resolution ?? 1 + random.next() * 2.5) * (0.8 + random.next() * 0.4) * 100) / 100
          : undefined;
      const summary: StructureSummary = {
        ...base.summary,
        atoms: Math.max(1, Math.round(base.summary.atoms * scale)),
        residues: Math.round(base.summary.residues * scale),
        resolution,
        title: `${qualifier} ${family} ${base.summary.title ?? ''}`.trim().slice(0, 200),
        pdbId: base.kind === 'macromolecule' ? code : undefined,
        method: base.summary.method ?? (resolution ? 'X-RAY DIFFRACTION' : undefined),
      };
      const created = new Date(start + i * step + random.int(1000));
      const structureId = randomUUID();
      const versionId = randomUUID();
      structures.push({
        id: structureId,
        project_id: random.pick(projects.get(owner) as string[]),
        owner_id: owner,
        name: `${qualifier} ${family} ${code}`,
        description: `${family} from ${random.pick(ORGANISMS)}, derived from ${base.file}`,
        kind: base.kind,
        tags,
        metadata: { organism: random.pick(ORGANISMS), lab: { bench: `B${1 + random.int(12)}` }, batch: 1 + random.int(300) },
        deleted_at: random.next() < 0.03 ? created.toISOString() : null,
        created_at: created.toISOString(),
      });
      versions.push({
        id: versionId,
        structure_id: structureId,
        blob_sha256: base.sha256,
        format: base.format,
        filename: `${code.toLowerCase()}.${base.format}`,
        summary,
        created_at: created.toISOString(),
      });
    }
    await em.execute(
      `insert into structures (id, project_id, owner_id, name, description, kind, tags, metadata, deleted_at, created_at, updated_at)
       select id, project_id, owner_id, name, description, kind, tags, metadata, deleted_at, created_at, created_at
       from jsonb_to_recordset(?::jsonb) as r(id uuid, project_id uuid, owner_id uuid, name text, description text, kind text, tags text[],
            metadata jsonb, deleted_at timestamptz, created_at timestamptz)`,
      [JSON.stringify(structures)],
    );
    await em.execute(
      `insert into structure_versions (id, structure_id, number, blob_sha256, format, filename, summary, validation, created_at)
       select id, structure_id, 1, blob_sha256, format, filename, summary, '{"problems":[],"warnings":[],"parser":"bench","parseMs":0}', created_at
       from jsonb_to_recordset(?::jsonb) as r(id uuid, structure_id uuid, blob_sha256 text, format text, filename text, summary jsonb, created_at timestamptz)`,
      [JSON.stringify(versions)],
    );
    await em.execute(
      `update structures s set current_version_id = v.id from structure_versions v
       where v.structure_id = s.id and s.id = any(?::uuid[])`,
      [`{${(structures as { id: string }[]).map((s) => s.id).join(',')}}`],
    );
    process.stderr.write(`\rseeding structures: ${Math.min(total, offset + BATCH)}/${total}`);
  }
  process.stderr.write('\n');
}

interface QueryKind {
  name: string;
  make: (random: ReturnType<typeof prng>) => string;
}

/** The fixed mix: each kind equally often, parameters from a seeded PRNG. */
export const MIX: QueryKind[] = [
  { name: 'text: one word', make: (r) => `q=${r.pick(FAMILIES)}` },
  { name: 'text: two words', make: (r) => `q=${encodeURIComponent(`${r.pick(QUALIFIERS)} ${r.pick(FAMILIES)}`)}` },
  { name: 'text: typo', make: (r) => `q=${r.pick(Object.values(TYPOS))}` },
  { name: 'text: prefix', make: (r) => `q=${r.pick(FAMILIES).slice(0, 3)}` },
  { name: 'filtered', make: (r) => `kind=macromolecule&resolutionMax=${(1.5 + r.next()).toFixed(1)}&tag=${r.pick(TAGS)}` },
  { name: 'text + filters', make: (r) => `q=${r.pick(FAMILIES)}&method=x-ray%20diffraction&atomsMin=${100 * (1 + r.int(20))}&hasLigand=true` },
  { name: 'text + facets', make: (r) => `q=${r.pick(FAMILIES)}&facets=tag,kind,format,method` },
  { name: 'tags any + facets', make: (r) => `tag=${r.pick(TAGS)},${r.pick(TAGS)}&tagMode=any&facets=kind,format,method` },
  { name: 'list: newest', make: () => 'sort=-created&limit=50' },
  { name: 'sorted: atoms', make: (r) => `kind=${r.pick(['macromolecule', 'small-molecule'])}&sort=${r.pick(['atoms', '-atoms'])}` },
  { name: 'sorted: name + text', make: (r) => `q=${r.pick(FAMILIES)}&sort=name` },
  { name: 'sorted: resolution', make: (r) => `resolutionMax=${(2 + r.next()).toFixed(1)}&sort=resolution&project=` },
  { name: 'all facets, no filter', make: () => 'facets=tag,kind,format,method&limit=20' },
];

/**
 * The load generator (plain JS, run in a worker thread): `concurrency` keep-alive connections, each
 * looping over the plan, timing each request from its first byte written to its last byte read, as
 * wrk does. HTTP/1.1 is written and read by hand over node:net: on a shared 2-core machine the
 * client's own cost is taken from the server, and node:http's request and response objects cost the
 * client about twice as much per request (measured), which says nothing about molvault. molvault
 * answers with Content-Length (Koa sets it for the buffers and JSON it sends).
 */
const LOAD_CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { url, concurrency, plan } = workerData;
const { hostname, port } = new URL(url);
const results = [];
let next = 0;
let measuredStart = 0;
// Warm-up answers are parsed whole (their shape checked); measured ones only have their total read from
// the body's tail: parsing 50 structures costs the client ~0.6 ms of the same 2 cores the server runs on,
// which is the client's cost, not molvault's. The latency is the same either way: the last byte read.
const TOTAL = /"total":(\\d+),"nextCursor":(?:null|"[^"]*")}$/;
const HEAD_END = Buffer.from('\\r\\n\\r\\n');
function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port, noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}
/** One request on a kept-alive socket; resolves with the status and the body's bytes (only its last 4 KiB unless whole). */
function exchange(socket, request, whole) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let received = 0;
    let status = 0;
    let bodyStart = -1;
    let length = -1;
    const onData = (chunk) => {
      chunks.push(chunk);
      received += chunk.length;
      if (bodyStart < 0) {
        const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
        const end = head.indexOf(HEAD_END);
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        status = Number(text.slice(9, 12));
        const found = /\\r\\ncontent-length: *(\\d+)/i.exec(text);
        if (!found) return done(new Error('an answer without Content-Length: ' + text.slice(0, 200)));
        length = Number(found[1]);
        bodyStart = end + 4;
      }
      if (received - bodyStart >= length) done();
    };
    const onError = (error) => done(error);
    const done = (error) => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error) return reject(error);
      // Unless the whole body is asked for, only its last 4 KiB are copied out of the chunks.
      const need = whole ? length : Math.min(4096, length);
      let first = 0;
      let offset = 0;
      while (first < chunks.length - 1 && received - (offset + chunks[first].length) >= need) offset += chunks[first++].length;
      const kept = first === chunks.length - 1 ? chunks[first] : Buffer.concat(chunks.slice(first), received - offset);
      const from = Math.max(0, bodyStart - offset);
      resolve({ status, body: kept.subarray(from, bodyStart + length - offset), whole: offset <= bodyStart });
    };
    const onClose = () => done(new Error('the server closed the connection'));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(request);
  });
}
async function get(socket, path, token, parse) {
  const { status, body, whole } = await exchange(socket, 'GET ' + path + ' HTTP/1.1\\r\\nHost: ' + hostname + ':' + port + '\\r\\nAuthorization: Bearer ' + token + '\\r\\n\\r\\n', parse);
  const tail = body.subarray(Math.max(0, body.length - 4096)).toString('latin1');
  const found = status === 200 && !parse ? TOTAL.exec(tail) : null;
  if (found) return { status: 200, body: { total: Number(found[1]) } };
  if (!whole) return { status: 599, body: { error: 'no total at the end of the answer', tail: tail.slice(-200) } };
  const parsed = JSON.parse(body.toString('utf8'));
  if (status === 200 && !(Array.isArray(parsed.items) && typeof parsed.total === 'number' && parsed.facets)) {
    return { status: 599, body: { error: 'answer is not a search page', got: Object.keys(parsed) } };
  }
  return { status, body: parsed };
}
async function loop() {
  const socket = await connect();
  try {
    for (;;) {
      const i = next++;
      if (i >= plan.length) return;
      const item = plan[i];
      if (measuredStart === 0) measuredStart = performance.now();
      const started = performance.now();
      const { status, body } = await get(socket, '/v1/search?' + item.query, item.token, item.parse);
      const ms = performance.now() - started;
      results.push({ kind: item.kind, ms, total: body.total ?? 0, status, warm: item.warm,
        error: status === 200 ? undefined : JSON.stringify(body).slice(0, 300) });
    }
  } finally {
    socket.destroy();
  }
}
// This thread's own CPU (Linux), so the API's share can be told from the client's.
const threadCpuMs = () => {
  try {
    const fields = require('node:fs').readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
};
const cpuBefore = threadCpuMs();
Promise.all(Array.from({ length: concurrency }, loop)).then(() => {
  const cpuAfter = threadCpuMs();
  parentPort.postMessage({ results, seconds: (performance.now() - measuredStart) / 1000, clientCpuMs: cpuBefore === undefined ? undefined : cpuAfter - cpuBefore });
});
`;

/**
 * The bench users of a kept database, with fresh tokens, when it holds exactly the asked-for seed;
 * undefined when it is empty; a usage error when it holds a different one.
 */
async function seededBefore(ctx: AppContext, options: { structures: number; owners: number; keepDatabase?: string }) {
  const em = ctx.orm.em.fork();
  const users = await em.execute<{ id: string; n: string }[]>(
    `select u.id, count(s.id) as n from users u left join structures s on s.owner_id = u.id
     where u.name = 'benchmark' group by u.id order by min(u.created_at), u.id`,
  );
  const structures = users.reduce((sum, u) => sum + Number(u.n), 0);
  if (users.length === 0) return undefined;
  if (users.length !== options.owners || structures !== options.structures) {
    throw new UsageError(
      `database ${options.keepDatabase} holds ${structures} structures over ${users.length} owner(s), not ${options.structures} over ${options.owners}; ` +
        'use another --keep-database name, or drop that database',
    );
  }
  const owners: { userId: string; token: string }[] = [];
  for (const { id } of users) owners.push({ userId: id, token: (await createToken(em, id, { name: 'benchmark' })).token });
  return owners;
}

interface CpuSample {
  /** This process: the API and the load client's thread. */
  process: NodeJS.CpuUsage;
  /** Postgres backends serving the bench's database, by pid, in ms (when they run on this machine). */
  postgres: Map<number, number>;
  /** Postgres's other processes (autovacuum, checkpointer, background and WAL writers), by pid, in ms. */
  background: Map<number, number>;
}

/** CPU a Postgres backend has used, from /proc, in ms; undefined when it is not on this machine. */
async function backendCpuMs(pid: number): Promise<number | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

async function cpuNow(em: EntityManager): Promise<CpuSample> {
  const pids = await em.execute<{ pid: number; serving: boolean }[]>(
    `select pid, datname = current_database() and backend_type = 'client backend' as serving from pg_stat_activity
     where datname = current_database() or datname is null`,
  );
  const postgres = new Map<number, number>();
  const background = new Map<number, number>();
  for (const { pid, serving } of pids) {
    const ms = await backendCpuMs(pid);
    if (ms !== undefined) (serving ? postgres : background).set(pid, ms);
  }
  return { process: process.cpuUsage(), postgres, background };
}

/** CPU per request: this process's (API and load client), Postgres's serving backends' and its background processes', in ms. */
interface CpuFigures {
  apiMs: number;
  postgresMs: number;
  backgroundMs: number;
  /** False when Postgres runs elsewhere, so its processes could not be read. */
  postgresCounted: boolean;
}

function cpuFigures(before: CpuSample, after: CpuSample, requests: number): CpuFigures {
  const own = process.cpuUsage(before.process);
  const spent = (which: 'postgres' | 'background') => {
    let ms = 0;
    for (const [pid, now] of after[which]) ms += now - (before[which].get(pid) ?? 0);
    return ms / requests;
  };
  return {
    apiMs: (own.user + own.system) / 1000 / requests,
    postgresMs: spent('postgres'),
    backgroundMs: spent('background'),
    postgresCounted: after.postgres.size > 0,
  };
}

function cpuPerRequest(cpu: CpuFigures, requests: number, clientCpuMs: number | undefined): string {
  // Background work (autovacuum, checkpoints) is not the searches', but takes the same cores: shown apart.
  const pg = cpu.postgresCounted
    ? `, Postgres ${cpu.postgresMs.toFixed(2)} ms (+ ${cpu.backgroundMs.toFixed(2)} ms in its background processes)`
    : ' (Postgres runs elsewhere: not counted)';
  // The client's thread CPU is counted in clock ticks (10 ms): exact enough over thousands of requests.
  if (clientCpuMs === undefined) return `API + load client ${cpu.apiMs.toFixed(2)} ms${pg}`;
  const client = clientCpuMs / requests;
  return `API ${(cpu.apiMs - client).toFixed(2)} ms, load client ${client.toFixed(2)} ms${pg}`;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Runs this script again on the seeded database (kept by this process, which drops it unless asked to keep it); its exit code. */
async function measureInFreshProcess(databaseUrl: string, postgresSource: string, options: ReturnType<typeof parseOptions>): Promise<number> {
  const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const args = [
    ...['--structures', options.structures, '--owners', options.owners, '--concurrency', options.concurrency, '--requests', options.requests],
    ...(options.sharing ? ['--sharing'] : []),
    ...['--compare-sharing', String(options.compareSharing)],
    ...['--warmup', options.warmup, '--backend', options.backend, '--keep-database', database],
  ];
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args.map(String)], {
    env: { ...process.env, DATABASE_URL: databaseUrl, BENCH_POSTGRES_SOURCE: postgresSource },
    stdio: 'inherit',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code ?? 1;
}

/**
 * `--compare-sharing ROUNDS` measures without and with sharing in the same process, alternating, ROUNDS
 * times each, and prints the medians side by side with their ratios.
 *
 * `--sharing`: every owner becomes a viewer of one project of each of the next two owners, so every
 * search reads the searcher's own documents and two other owners' shared projects (the memberships
 * are kept in the database; a run without `--sharing` removes them, so the two runs compare).
 */
async function arrangeSharing(em: EntityManager, owners: { userId: string }[], sharing: boolean): Promise<void> {
  await em.execute(`delete from project_members m using projects p where p.id = m.project_id and m.user_id <> p.owner_id`);
  if (!sharing || owners.length < 2) return;
  for (let i = 0; i < owners.length; i++) {
    for (const step of [1, 2]) {
      const other = owners[(i + step) % owners.length].userId;
      if (other === owners[i].userId) continue;
      await em.execute(
        `insert into project_members (id, project_id, user_id, role, created_at, updated_at)
         select gen_random_uuid(), p.id, ?, 'viewer', now(), now() from projects p where p.owner_id = ? order by p.name offset ? limit 1
         on conflict do nothing`,
        [owners[i].userId, other, step - 1],
      );
    }
  }
}

async function main() {
  const options = parseOptions();
  const stack = await startBenchStack({ env: { SEARCH_BACKEND: options.backend, LOG_LEVEL: 'error' }, keepDatabase: options.keepDatabase });
  stopOnSignals(stack.stop);
  try {
    const em = stack.ctx.orm.em.fork();
    const owners: { userId: string; token: string }[] = [];
    let bases: Base[] | undefined;
    let seedSeconds = Number.NaN;
    let indexSeconds = Number.NaN;
    const seeded = options.keepDatabase ? await seededBefore(stack.ctx, options) : undefined;
    if (seeded) {
      process.stderr.write(`reusing the ${options.structures} structures already in ${options.keepDatabase}\n`);
      owners.push(...seeded);
    } else {
      process.stderr.write('parsing corpus files for summaries...\n');
      bases = await corpusSummaries();
      for (let i = 0; i < options.owners; i++) owners.push(await createBenchUser(stack.ctx, 1e12));
      const seedStarted = performance.now();
      await seed(em, owners, bases, options.structures);
      seedSeconds = (performance.now() - seedStarted) / 1000;

      const index = await createSearchIndex(stack.ctx.config, stack.ctx.orm, stack.log, options.backend);
      const indexStarted = performance.now();
      let lastDraw = 0;
      await reindexAll(em.fork(), index, ({ done, total }) => {
        if (Date.now() - lastDraw > 500 || done === total) {
          lastDraw = Date.now();
          process.stderr.write(`\rindexing: ${done}/${total}`);
        }
      });
      process.stderr.write('\n');
      indexSeconds = (performance.now() - indexStarted) / 1000;
    }
    // The measuring process vacuums and checkpoints for itself, just before it measures.
    if (bases && !options.inProcess) {
      process.stdout.write(
        `\nsearch benchmark: seeded ${options.structures} structures in ${seedSeconds.toFixed(1)} s (bulk SQL), indexed them in ` +
          `${indexSeconds.toFixed(1)} s (${Math.round(options.structures / indexSeconds)} documents/s through reindexAll); measuring in a ` +
          'fresh process, whose API neither seeded nor indexed (--in-process: measure in this one)\n',
      );
      process.exitCode = await measureInFreshProcess(stack.databaseUrl, stack.postgresSource, options);
      return;
    }
    const prepare = async (sharing: boolean) => {
      await arrangeSharing(em, owners, sharing);
      if (options.backend === 'postgres')
        await em.execute('vacuum analyze search_documents, search_document_tags, search_terms, structures, structure_versions, blobs, project_members');
      // Seeding leaves about a gigabyte of pages to write out: written now (a checkpoint), not by the
      // checkpointer while queries are measured. Only a superuser may ask; otherwise it is left to happen.
      await em.execute('checkpoint').catch((error: Error) => process.stderr.write(`no checkpoint before measuring: ${error.message}\n`));
    };
    // Project filter needs a real id: the sorted-resolution kind gets each owner's first project.
    const firstProjects = new Map<string, string>();
    for (const { userId } of owners) {
      const [row] = await em.execute<{ id: string }[]>('select id from projects where owner_id = ? order by name limit 1', [userId]);
      firstProjects.set(userId, row.id);
    }
    const random = prng(7);
    const warmup = options.warmup;
    // The first answers are parsed whole, their shape checked; the rest only have their total read.
    const parsed = Math.min(200, warmup + options.requests);
    const plan = Array.from({ length: warmup + options.requests }, (_, i) => {
      const kind = MIX[i % MIX.length];
      const owner = owners[random.int(owners.length)];
      let query = kind.make(random);
      if (query.endsWith('project=')) query += firstProjects.get(owner.userId);
      return { kind: kind.name, owner, query, warm: i < warmup, parse: i < parsed };
    });

    // The load comes from a worker thread, so the client's requests and JSON parsing do not queue on
    // the API's event loop (they still share the machine's cores, as a client on the same host would).
    // Warm-up and measurement are separate runs, so the CPU counted is the measured requests' alone.
    const runLoad = async (items: typeof plan) => {
      const client = new Worker(LOAD_CLIENT, {
        eval: true,
        workerData: { url: stack.url, concurrency: options.concurrency, plan: items.map((p) => ({ ...p, token: p.owner.token, owner: undefined })) },
      });
      stopOnSignals(async () => {
        await client.terminate();
      });
      try {
        return await new Promise<{
          results: { kind: string; ms: number; total: number; status: number; warm: boolean; error?: string }[];
          seconds: number;
          clientCpuMs?: number;
        }>((resolve, reject) => {
          client.once('message', resolve);
          client.once('error', reject);
        });
      } finally {
        await client.terminate();
      }
    };
    // One measurement (warm-up, then the measured requests) with sharing arranged or not; its figures.
    const measure = async (sharing: boolean) => {
      await prepare(sharing);
      const warming = plan.filter((p) => p.warm);
      const warmed = warming.length ? await runLoad(warming) : { results: [], seconds: 0 };
      const measuring = plan.filter((p) => !p.warm);
      const loadBefore = os.loadavg()[0];
      const cpuBefore = await cpuNow(em);
      const measured = await runLoad(measuring);
      const cpuAfter = await cpuNow(em);
      const loadAfter = os.loadavg()[0];
      const outcome = { results: [...warmed.results, ...measured.results], seconds: measured.seconds };
      const latencies: number[] = [];
      const warmupLatencies = warmed.results
        .filter((r) => r.status === 200)
        .map((r) => r.ms)
        .sort((a, b) => a - b);
      const byKind = new Map<string, number[]>();
      const hits = new Map<string, number[]>();
      let failures = 0;
      for (const result of outcome.results) {
        if (result.status !== 200) {
          failures++;
          if (failures <= 3) process.stderr.write(`a ${result.kind} query answered ${result.status}: ${result.error ?? ''}\n`);
          continue;
        }
        if (result.warm) continue;
        latencies.push(result.ms);
        if (!byKind.has(result.kind)) byKind.set(result.kind, []);
        byKind.get(result.kind)?.push(result.ms);
        if (!hits.has(result.kind)) hits.set(result.kind, []);
        hits.get(result.kind)?.push(result.total);
      }
      const seconds = outcome.seconds;
      latencies.sort((a, b) => a - b);
      const ms = (v: number) => `${v.toFixed(1)} ms`;
      const cpu = cpuFigures(cpuBefore, cpuAfter, latencies.length);
      const lines = [
        '',
        `search benchmark — ${options.backend} backend, ${process.env.BENCH_POSTGRES_SOURCE ?? stack.postgresSource} Postgres`,
        `  sharing:         ${sharing ? 'each owner a viewer of one project of each of two other owners' : 'none'}`,
        `  structures:      ${options.structures} over ${options.owners} owner(s) (${Math.round(options.structures / options.owners)} each)${bases ? `, from ${bases.length} corpus summaries` : `, seeded before in ${options.keepDatabase}`}`,
        ...(bases
          ? [
              `  seeding:         ${seedSeconds.toFixed(1)} s (bulk SQL)`,
              `  indexing:        ${indexSeconds.toFixed(1)} s (${Math.round(options.structures / indexSeconds)} documents/s through reindexAll)`,
            ]
          : []),
        `  requests:        ${latencies.length} measured after ${warmup} warm-up, concurrency ${options.concurrency}, ${failures} failed`,
        ...(warmupLatencies.length
          ? [
              `  warm-up:         ${(warmupLatencies.length / warmed.seconds).toFixed(0)} queries/s, p50 ${ms(percentile(warmupLatencies, 50))}, p95 ${ms(percentile(warmupLatencies, 95))} ` +
                `(a fresh API process and fresh Postgres connections; the first ${parsed} answers parsed whole by the client)`,
            ]
          : []),
        `  queries/s:       ${(latencies.length / seconds).toFixed(0)}`,
        `  p50:             ${ms(percentile(latencies, 50))}`,
        `  p95:             ${ms(percentile(latencies, 95))}   (goal < 25 ms)`,
        `  p99:             ${ms(percentile(latencies, 99))}   (goal < 60 ms)`,
        `  max:             ${ms(latencies[latencies.length - 1] ?? Number.NaN)}`,
        `  CPU per request: ${cpuPerRequest(cpu, latencies.length, measured.clientCpuMs)}`,
        `  load average:    ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (${os.cpus().length} cores; other work on the machine slows every figure above)`,
        '',
        '  by kind of query                 p50        p95     median hits',
      ];
      for (const kind of MIX) {
        const values = (byKind.get(kind.name) ?? []).sort((a, b) => a - b);
        const found = (hits.get(kind.name) ?? []).sort((a, b) => a - b);
        lines.push(
          `  ${kind.name.padEnd(28)} ${ms(percentile(values, 50)).padStart(10)} ${ms(percentile(values, 95)).padStart(10)} ${String(percentile(found, 50)).padStart(12)}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      if (failures > 0) process.exitCode = 1;
      return { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), ...cpu };
    };

    if (options.compareSharing === 0) {
      await measure(options.sharing);
      return;
    }
    // Rounds alternate (none, shared; then shared, none; …) so that drift hits both alike; the
    // comparison is of each figure's median over the rounds.
    const figures: Record<'none' | 'shared', Awaited<ReturnType<typeof measure>>[]> = { none: [], shared: [] };
    for (let round = 0; round < options.compareSharing; round++) {
      for (const sharing of round % 2 === 0 ? [false, true] : [true, false]) {
        process.stdout.write(`\n— round ${round + 1} of ${options.compareSharing}, ${sharing ? 'with' : 'without'} sharing —`);
        figures[sharing ? 'shared' : 'none'].push(await measure(sharing));
      }
    }
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    };
    const row = (name: string, key: 'p50' | 'p95' | 'p99' | 'apiMs' | 'postgresMs', unit: string, goal = '') => {
      const none = median(figures.none.map((f) => f[key]));
      const shared = median(figures.shared.map((f) => f[key]));
      return `  ${name.padEnd(18)} ${`${none.toFixed(2)} ${unit}`.padStart(11)} ${`${shared.toFixed(2)} ${unit}`.padStart(11)} ${`${(shared / none).toFixed(2)}×`.padStart(7)}${goal}`;
    };
    process.stdout.write(
      [
        '',
        `sharing compared — medians over ${options.compareSharing} alternating round(s) of each, ${options.requests} measured requests a round`,
        `  ${''.padEnd(18)} ${'no sharing'.padStart(11)} ${'sharing'.padStart(11)} ${'ratio'.padStart(7)}`,
        row('p50', 'p50', 'ms'),
        row('p95', 'p95', 'ms', '   (goal: ≤ 1.10× and sharing < 25 ms)'),
        row('p99', 'p99', 'ms', '   (goal: ≤ 1.10×)'),
        row('API+client CPU', 'apiMs', 'ms'),
        row('PG CPU/request', 'postgresMs', 'ms'),
        '',
      ].join('\n'),
    );
  } finally {
    await stack.stop();
  }
}

// Run as a script (npm run bench:search); importing it (to reuse the seeding) runs nothing.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof UsageError ? '' : 'bench:search failed: '}${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  });
}
