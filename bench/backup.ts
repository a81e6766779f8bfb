/**
 * Backup and restore speed against the peer tools, on one synthetic database and blob store:
 *  - database: molvault's logical dump (one snapshot, COPY per table, gzip) against `pg_dump -Fc`,
 *    and the restore of each (molvault's migrations + COPY against `pg_restore`). pg_dump runs only
 *    when its major version matches the server's (BENCH_DATABASE_URL, default the local Postgres).
 *  - blobs: a full backup, then an incremental one with nothing new, against `tar -czf` of the store.
 * BENCH_STRUCTURES (default 50000) rows of structures/versions/blobs; BENCH_BLOB_FILES (default 300) files.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import pg from 'pg';
import { walkFiles } from '../src/backup/blobs.js';
import { dumpDatabase, restoreDatabase } from '../src/backup/dump.js';
import { createBackup } from '../src/backup/service.js';
import { connectOrm, migrate } from '../src/db/orm.js';
import { createLogger } from '../src/lib/logger.js';
import { dropDatabase, ensureDatabase, withDatabase } from '../src/runtime/postgres.js';
import { LocalBlobStore } from '../src/storage/localBlobStore.js';

const run = promisify(execFile);
const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const STRUCTURES = Number(process.env.BENCH_STRUCTURES ?? 50_000);
const BLOB_FILES = Number(process.env.BENCH_BLOB_FILES ?? 300);
const log = createLogger('warn', { stderr: true });
const suffix = randomBytes(3).toString('hex');
const sourceUrl = withDatabase(serverUrl, `molvault_bench_backup_${suffix}`);
const targetUrl = withDatabase(serverUrl, `molvault_bench_restore_${suffix}`);
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-bench-backup-'));

async function timed<T>(body: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const result = await body();
  return [result, Number(process.hrtime.bigint() - started) / 1e9];
}

async function dirBytes(dir: string) {
  let total = 0;
  for await (const file of walkFiles(dir)) total += (await fs.stat(file)).size;
  return total;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

try {
  await ensureDatabase(sourceUrl);
  const orm = await connectOrm(sourceUrl);
  await migrate(orm);
  await orm.close();
  const db = new pg.Client({ connectionString: sourceUrl });
  await db.connect();
  const summary = JSON.stringify({
    atoms: 1234,
    residues: 150,
    chains: ['A', 'B'],
    title: 'synthetic structure for the backup benchmark',
    ligands: ['HEM', 'SO4'],
  });
  await db.query(
    `insert into users (id, email, role, quota_bytes, created_at, updated_at) values (gen_random_uuid(), 'bench@example.org', 'user', 1e12, now(), now())`,
  );
  await db.query(`insert into projects (id, owner_id, name, created_at, updated_at) select gen_random_uuid(), id, 'bench', now(), now() from users`);
  await db.query(
    `insert into blobs (sha256, size, stored_size, media_type, created_at)
     select md5(i::text) || md5((i + 1)::text), 100000 + i, 100000 + i, 'chemical/x-pdb', now() from generate_series(1, $1) i`,
    [STRUCTURES],
  );
  await db.query(
    `insert into structures (id, project_id, owner_id, name, kind, tags, metadata, created_at, updated_at)
     select gen_random_uuid(), p.id, p.owner_id, 'structure ' || i, 'macromolecule', array['bench', 'tag' || (i % 50)],
            jsonb_build_object('organism', 'E. coli', 'i', i), now(), now()
       from projects p, generate_series(1, $1) i`,
    [STRUCTURES],
  );
  await db.query(
    `insert into structure_versions (id, structure_id, number, blob_sha256, format, filename, summary, validation, created_at)
     select gen_random_uuid(), s.id, 1, md5(n::text) || md5((n + 1)::text), 'pdb', s.name || '.pdb', $1::jsonb, '{"problems": []}'::jsonb, now()
       from (select id, name, row_number() over (order by id) as n from structures) s`,
    [summary],
  );
  const serverMajor = Number((await db.query<{ v: string }>(`select current_setting('server_version_num') as v`)).rows[0]?.v) / 10000;
  await db.end();

  // Database: molvault's logical dump and restore.
  const dumpDir = path.join(work, 'dump');
  const [dump, dumpSeconds] = await timed(() => dumpDatabase(sourceUrl, dumpDir));
  const dumpBytes = dump.tables.reduce((sum, t) => sum + t.bytes, 0);
  await ensureDatabase(targetUrl);
  const [, restoreSeconds] = await timed(() => restoreDatabase(targetUrl, dump, (file) => path.join(dumpDir, file), log));
  await dropDatabase(targetUrl);
  const rows = dump.tables.reduce((sum, t) => sum + t.rows, 0);
  process.stdout.write(`database: ${rows} rows in ${dump.tables.length} tables (Postgres ${Math.floor(serverMajor)})\n`);
  process.stdout.write(`  molvault logical dump   ${dumpSeconds.toFixed(2)} s  ${mb(dumpBytes)} MB   restore ${restoreSeconds.toFixed(2)} s\n`);

  const pgDumpMajor = await run('pg_dump', ['--version'])
    .then(({ stdout }) => Number(/(\d+)\.\d+/.exec(stdout)?.[1]))
    .catch(() => undefined);
  if (pgDumpMajor !== undefined && pgDumpMajor === Math.floor(serverMajor)) {
    const file = path.join(work, 'dump.pgdump');
    const [, pgDumpSeconds] = await timed(() => run('pg_dump', ['-Fc', '-f', file, '-d', sourceUrl]));
    await ensureDatabase(targetUrl);
    const [, pgRestoreSeconds] = await timed(() => run('pg_restore', ['-d', targetUrl, file]));
    await dropDatabase(targetUrl);
    process.stdout.write(
      `  pg_dump -Fc             ${pgDumpSeconds.toFixed(2)} s  ${mb((await fs.stat(file)).size)} MB   pg_restore ${pgRestoreSeconds.toFixed(2)} s\n`,
    );
  } else {
    process.stdout.write(`  pg_dump -Fc             not run: pg_dump ${pgDumpMajor ?? 'missing'} does not match the server's major version\n`);
  }

  // Blobs: real files (PDB-like text, so gzip has something to do), then a full and an incremental backup.
  const dataDir = path.join(work, 'data');
  const store = new LocalBlobStore(path.join(dataDir, 'blobs'));
  // Coordinates vary, as in real files, so gzip compresses them about as much as real PDB files.
  const atoms = (count: number) => {
    const lines: string[] = [];
    for (let n = 1; n <= count; n++) {
      const [x, y, z] = [0, 1, 2].map(() => (Math.random() * 200 - 100).toFixed(3).padStart(8));
      lines.push(
        `ATOM  ${String(n).padStart(5)}  CA  GLY A${String(n % 9999).padStart(4)}    ${x}${y}${z}  1.00${(Math.random() * 60).toFixed(2).padStart(6)}           C\n`,
      );
    }
    return lines.join('');
  };
  const db2 = new pg.Client({ connectionString: sourceUrl });
  await db2.connect();
  await db2.query('truncate blobs cascade');
  let blobBytes = 0;
  for (let i = 0; i < BLOB_FILES; i++) {
    const content = Buffer.from(`REMARK ${i} ${randomBytes(8).toString('hex')}\n${atoms(2000 + (i % 7) * 500)}`);
    const hash = createHash('sha256').update(content).digest('hex');
    await store.put(Readable.from([content]), { sha256: hash, size: content.length });
    await db2.query(`insert into blobs (sha256, size, stored_size, media_type, created_at) values ($1, $2, $2, 'chemical/x-pdb', now())`, [
      hash,
      content.length,
    ]);
    blobBytes += content.length;
  }
  await db2.end();
  const env = {
    config: { backupDir: path.join(work, 'backups'), blobDir: path.join(dataDir, 'blobs'), backupKeepLast: 14, backupKeepDays: 30 },
    databaseUrl: sourceUrl,
    log,
  };
  const [full, fullSeconds] = await timed(() => createBackup(env, { kind: 'manual' }));
  const [incremental, incrementalSeconds] = await timed(() => createBackup(env, { kind: 'manual' }));
  const [, tarSeconds] = await timed(() => run('tar', ['-czf', path.join(work, 'blobs.tar.gz'), '-C', dataDir, 'blobs']));
  const tarBytes = (await fs.stat(path.join(work, 'blobs.tar.gz'))).size;
  process.stdout.write(`blobs: ${BLOB_FILES} files, ${mb(blobBytes)} MB\n`);
  process.stdout.write(
    `  molvault full backup    ${fullSeconds.toFixed(2)} s  ${mb(full.sizeBytes)} MB written  (${(blobBytes / 1e6 / fullSeconds).toFixed(1)} MB/s, database included)\n`,
  );
  process.stdout.write(
    `  molvault incremental    ${incrementalSeconds.toFixed(2)} s  ${mb(incremental.sizeBytes)} MB written, ${incremental.newBlobCount} blobs copied\n`,
  );
  process.stdout.write(`  tar -czf of the store   ${tarSeconds.toFixed(2)} s  ${mb(tarBytes)} MB  (${(blobBytes / 1e6 / tarSeconds).toFixed(1)} MB/s)\n`);
  process.stdout.write(`  backup directory        ${mb(await dirBytes(env.config.backupDir))} MB for both backups\n`);
} finally {
  await dropDatabase(sourceUrl).catch(() => {});
  await dropDatabase(targetUrl).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
}
