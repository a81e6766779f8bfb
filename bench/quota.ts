/**
 * How fast the quota check and the usage figures are for a user with many versions: a user with
 * STRUCTURES structures of VERSIONS versions each (distinct blobs, rows made in SQL, no files),
 * then the time of reserve() (what every upload waits for), of chargeUpload() (the snapshot's
 * hand-over), of refreshUsage() (one user's full recomputation: trash, purge, GET /v1/usage), of
 * the usage job over everyone, and of a GC dry run.
 */
import { randomUUID } from 'node:crypto';
import { collectGarbage } from '../src/services/maintenance/gc.js';
import { chargeUpload, releaseReservation, reserve } from '../src/services/quota/quota.js';
import { recomputeAllUsage, refreshUsage } from '../src/services/quota/usage.js';
import { quantile } from './support/figures.js';
import { createBenchUser, createProject, startBenchStack, stopOnSignals } from './support/stack.js';

const STRUCTURES = Number(process.env.STRUCTURES ?? 20_000);
const VERSIONS = Number(process.env.VERSIONS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 200);

async function timed<T>(body: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const result = await body();
  return [performance.now() - start, result];
}

const stack = await startBenchStack();
stopOnSignals(stack.stop);
try {
  const { userId, token } = await createBenchUser(stack.ctx, 1e15);
  const projectId = await createProject(stack.url, token, 'quota bench');
  const em = stack.ctx.orm.em.fork();
  const [fill] = await timed(async () => {
    await em.execute(
      `insert into blobs (sha256, size, stored_size, media_type, created_at)
       select encode(sha256(('bench' || i)::bytea), 'hex'), 1000 + i, 1000 + i, 'chemical/x-pdb', now() from generate_series(1, ?) i`,
      [STRUCTURES * VERSIONS],
    );
    await em.execute(
      `insert into structures (id, project_id, owner_id, name, created_at, updated_at)
       select gen_random_uuid(), ?, ?, 's' || i, now(), now() from generate_series(1, ?) i`,
      [projectId, userId, STRUCTURES],
    );
    await em.execute(
      `insert into structure_versions (id, structure_id, number, blob_sha256, format, filename, summary, validation, created_at)
       select gen_random_uuid(), s.id, n, encode(sha256(('bench' || ((row_number() over ()) ))::bytea), 'hex'), 'pdb', 'x.pdb', '{}', '{}', now()
         from structures s cross join generate_series(1, ?) n where s.owner_id = ?`,
      [VERSIONS, userId],
    );
    await em.execute(
      `update structures s set current_version_id = (select v.id from structure_versions v where v.structure_id = s.id order by number desc limit 1) where s.owner_id = ?`,
      [userId],
    );
    await em.execute('analyze');
  });
  const [firstRefresh, figure] = await timed(() => refreshUsage(em.fork(), userId));

  const reserveMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const uploadId = randomUUID();
    const [ms] = await timed(() => reserve(em.fork(), { userId, uploadId, needed: 1_000_000 }));
    reserveMs.push(ms);
    await releaseReservation(em.fork(), uploadId);
  }
  const chargeMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const uploadId = randomUUID();
    await reserve(em.fork(), { userId, uploadId, needed: 1000 });
    const [ms] = await timed(() => em.fork().transactional((tx) => chargeUpload(tx, userId, uploadId, 0)));
    chargeMs.push(ms);
  }
  const refreshMs: number[] = [];
  for (let i = 0; i < 20; i++) refreshMs.push((await timed(() => refreshUsage(em.fork(), userId)))[0]);
  const [allMs, all] = await timed(() => recomputeAllUsage(em.fork(), stack.log));
  const [gcMs, gc] = await timed(() => collectGarbage({ ...stack.ctx, em: em.fork() }, { dryRun: true }));

  const row = (name: string, value: string) => process.stdout.write(`${name.padEnd(44)} ${value}\n`);
  process.stdout.write(`\nquota and usage, one user with ${STRUCTURES} structures × ${VERSIONS} versions (${STRUCTURES * VERSIONS} distinct blobs)\n\n`);
  row('rows made (SQL)', `${(fill / 1000).toFixed(1)} s`);
  row('usage of that user', `${figure.usedBytes} bytes (current ${figure.breakdown.current}, history ${figure.breakdown.history})`);
  row(
    'reserve() — the per-upload quota check',
    `p50 ${quantile(reserveMs, 0.5).toFixed(2)} ms, p95 ${quantile(reserveMs, 0.95).toFixed(2)} ms (${ROUNDS} calls)`,
  );
  row('chargeUpload() — the snapshot hand-over', `p50 ${quantile(chargeMs, 0.5).toFixed(2)} ms, p95 ${quantile(chargeMs, 0.95).toFixed(2)} ms`);
  row(
    'refreshUsage() — one user recomputed',
    `first ${firstRefresh.toFixed(0)} ms, p50 ${quantile(refreshMs, 0.5).toFixed(0)} ms, p95 ${quantile(refreshMs, 0.95).toFixed(0)} ms`,
  );
  row('usage job — every user', `${allMs.toFixed(0)} ms for ${all.users} users`);
  row('gc dry run — scan of every blob', `${gcMs.toFixed(0)} ms (${gc.blobs.newlyOrphaned} unreferenced)`);
  process.stdout.write('\nNo peer tool does this accounting; the numbers stand alone.\n');
} finally {
  await stack.stop();
}
