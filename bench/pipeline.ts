/**
 * The upload stages without HTTP or queues: stages N small corpus files (distinct content) as
 * Upload rows, then runs runUploadPipeline over them with C at a time, as a bulk import's item
 * jobs do, and prints files/s and CPU per file. For finding what to speed up in the stages.
 *   npm run bench:pipeline -- --files 1000 --concurrency 3 --chunk 25   (chunks through runUploadBatch)
 *   npm run bench:pipeline -- --files 1000 --concurrency 8             (one by one through runUploadPipeline)
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { EnginePool } from '../src/engines/pool.js';
import { Upload } from '../src/entities/Upload.js';
import type { JobContext } from '../src/jobs/define.js';
import { CpuPool } from '../src/pool/cpuPool.js';
import { runUploadBatch } from '../src/services/upload/bulk.js';
import { runUploadPipeline } from '../src/services/upload/pipeline.js';
import { createBenchUser, createProject, startBenchStack, stopOnSignals } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = path.resolve(REPO_ROOT, '../shared/corpus');
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const FILES = arg('files', 500);
const CONCURRENCY = arg('concurrency', 8);
/** Uploads per runUploadBatch call; 0 runs runUploadPipeline one upload at a time. */
const CHUNK = arg('chunk', 0);

const sources: { name: string; bytes: Buffer }[] = [];
for (const dir of ['pdb', 'cif']) {
  for (const name of (await fs.readdir(path.join(CORPUS, dir))).sort()) {
    if (name.endsWith('.gz')) continue;
    const bytes = await fs.readFile(path.join(CORPUS, dir, name));
    if (bytes.length < 100_000) sources.push({ name, bytes });
  }
}

// Counts the SQL statements sent, by their first words, to see what each file costs the database.
const statements = new Map<string, { count: number; ms: number }>();
const pg = (await import('pg')).default;
const originalQuery = pg.Client.prototype.query;
let counting = false;
pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
  if (counting) {
    const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string })?.text ?? '?');
    const key = text
      .replace(/'(?:[^']|'')*'/g, '?')
      .replace(/\b\d+\b/g, 'N')
      .replace(/\s+/g, ' ')
      .slice(0, 100);
    const t0 = performance.now();
    const result = (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
    const entry = statements.get(key) ?? { count: 0, ms: 0 };
    entry.count++;
    statements.set(key, entry);
    if (result && typeof (result as Promise<unknown>).then === 'function')
      (result as Promise<unknown>).then(
        () => {
          entry.ms += performance.now() - t0;
        },
        () => {},
      );
    return result;
  }
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof originalQuery;

const stack = await startBenchStack();
stopOnSignals(stack.stop);
const cpu = new CpuPool(stack.ctx.config.parseThreads, stack.ctx.config.parseTimeoutMs, stack.ctx.config.parseMaxMemoryMb);
const engines = new EnginePool(stack.ctx.engineCatalog, stack.ctx.config.engines, stack.ctx.log);
try {
  const { userId, token } = await createBenchUser(stack.ctx, 1e12);
  const projectId = await createProject(stack.url, token, 'pipeline');
  const ids: string[] = [];
  let totalBytes = 0;
  const em = stack.ctx.orm.em.fork();
  for (let i = 0; i < FILES; i++) {
    const source = sources[i % sources.length];
    const id = randomUUID();
    // Distinct content per copy: a comment line CIF and PDB readers both skip.
    const marker = source.name.match(/\.(cif|mmcif)$/i) ? `# copy ${i}\n` : `REMARK 999 COPY ${i}\n`;
    const bytes = Buffer.concat([Buffer.from(marker), source.bytes]);
    totalBytes += bytes.length;
    await stack.ctx.staging.write(id, Readable.from([bytes]));
    em.create(Upload, {
      id,
      owner: userId,
      project: projectId,
      structureId: randomUUID(),
      createsStructure: true,
      state: 'received',
      filename: source.name,
      formatHint: null,
      format: null,
      compression: null,
      receivedBytes: bytes.length,
      receivedSha256: null,
      params: {},
      blob: null,
      kind: null,
      summary: null,
      validation: null,
      error: null,
      version: null,
      indexedAt: null,
    });
    ids.push(id);
  }
  await em.flush();
  // As the API does on receipt: each upload holds its received bytes against the quota.
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    await em.execute(
      `insert into quota_reservations (upload_id, owner_id, bytes, created_at, updated_at)
       select u.id, u.owner_id, u.received_bytes, now(), now() from uploads u where u.id in (?)`,
      [chunk],
    );
  }
  const job = { updateProgress: async () => {} } as unknown as JobContext['job'];
  const states = new Map<string, number>();
  const startCpu = process.cpuUsage();
  const started = performance.now();
  counting = true;
  let next = 0;
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += Math.max(1, CHUNK)) chunks.push(ids.slice(i, i + Math.max(1, CHUNK)));
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++];
        const ctx = { ...stack.ctx, cpu, engines, em: stack.ctx.orm.em.fork(), job };
        if (CHUNK > 0) {
          for (const state of (await runUploadBatch(ctx, chunk, `b${next}`)).values()) states.set(state, (states.get(state) ?? 0) + 1);
        } else {
          const state = await runUploadPipeline(ctx, { uploadId: chunk[0], ownerId: userId });
          states.set(state, (states.get(state) ?? 0) + 1);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  counting = false;
  const used = process.cpuUsage(startCpu);
  console.log(
    `runUploadPipeline: ${FILES} files (${(totalBytes / 1e6).toFixed(1)} MB), concurrency ${CONCURRENCY}, ${CHUNK > 0 ? `chunks of ${CHUNK}` : 'one by one'}, ${stack.ctx.config.parseThreads} parse threads`,
  );
  console.log(`  ${(FILES / seconds).toFixed(1)} files/s, ${(totalBytes / 1e6 / seconds).toFixed(2)} MB/s, ${seconds.toFixed(2)} s`);
  const sent = [...statements.values()].reduce((a, b) => a + b.count, 0);
  console.log(`  ${(sent / FILES).toFixed(1)} SQL statements per file (per file: count, ms waited):`);
  for (const [text, { count, ms }] of [...statements].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25))
    console.log(`    ${(count / FILES).toFixed(2).padStart(6)} ${(ms / FILES).toFixed(2).padStart(7)}  ${text}`);
  console.log(
    `  process CPU (all threads) ${((used.user + used.system) / 1000 / FILES).toFixed(2)} ms/file; states ${JSON.stringify(Object.fromEntries(states))}`,
  );
} finally {
  await engines.close();
  await cpu.close();
  await stack.stop();
}
