import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { connectOrm } from '../db/orm.js';
import { fsyncPath } from '../lib/fsync.js';
import type { Logger } from '../lib/logger.js';
import { quoteIdent } from '../runtime/postgres.js';
import { digester } from './blobs.js';
import type { BackupManifest, TableDump } from './layout.js';

/**
 * A logical dump taken in one REPEATABLE READ snapshot: every table of the public schema as a
 * gzip'd COPY text file, the applied migrations by name, and sequence positions. Restored by
 * replaying the same migrations, loading the files, then applying any newer migrations.
 *
 * Why not pg_dump: the embedded Postgres package ships no pg_dump, and a pg_dump older than the
 * server refuses to dump it (the system here has pg_dump 15, the embedded server is 18).
 */
const MIGRATIONS_TABLE = 'mikro_orm_migrations';
/** Not dumped as data: migrations are replayed by name, and the backup catalogue is rebuilt from the manifests. */
/**
 * Left out of a dump: the migrations (replayed instead), the backup records themselves, and the
 * search counts, which triggers on search_documents rebuild as its rows are loaded back.
 */
const NOT_DUMPED = new Set([MIGRATIONS_TABLE, 'backups', 'search_counts', 'search_tag_counts']);

export type DatabaseDump = BackupManifest['database'] & { blobs: { sha256: string; size: number }[] };

async function publicTables(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') order by c.relname`,
  );
  return rows.map((r) => r.name);
}

async function storedColumns(client: pg.Client, table: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select attname as name from pg_attribute
      where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = '' order by attnum`,
    [quoteIdent(table)],
  );
  return rows.map((r) => r.name);
}

export async function dumpDatabase(databaseUrl: string, outDir: string): Promise<DatabaseDump> {
  await fs.mkdir(outDir, { recursive: true });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const serverVersion = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? '';
    const tables = await publicTables(client);
    const migrations = tables.includes(MIGRATIONS_TABLE)
      ? (await client.query<{ name: string }>(`select name from ${MIGRATIONS_TABLE} order by id`)).rows.map((r) => r.name)
      : [];
    const dumps: TableDump[] = [];
    for (const table of tables.filter((t) => !NOT_DUMPED.has(t))) {
      const columns = await storedColumns(client, table);
      const rows = Number((await client.query<{ n: string }>(`select count(*) as n from ${quoteIdent(table)}`)).rows[0]?.n ?? 0);
      const file = `${table}.copy.gz`;
      const target = path.join(outDir, file);
      const digest = digester();
      const source = client.query(copyTo(`copy ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) to stdout`));
      await pipeline(source, createGzip(), digest.stream, createWriteStream(target));
      await fsyncPath(target);
      dumps.push({ name: table, columns, rows, file, ...digest.result() });
    }
    const sequences = (
      await client.query<{ name: string; last_value: string | null; is_called: boolean }>(
        `select s.relname as name, d.last_value::text as last_value, d.last_value is not null as is_called
           from pg_class s join pg_namespace n on n.oid = s.relnamespace
           join pg_sequences d on d.schemaname = n.nspname and d.sequencename = s.relname
          where n.nspname = 'public' and s.relkind = 'S'`,
      )
    ).rows
      .filter((s) => !s.name.startsWith(`${MIGRATIONS_TABLE}_`))
      .map((s) => ({ name: s.name, lastValue: s.last_value, isCalled: s.is_called }));
    const blobs = tables.includes('blobs')
      ? (await client.query<{ sha256: string; size: string }>('select sha256, size from blobs order by sha256')).rows.map((r) => ({
          sha256: r.sha256,
          size: Number(r.size),
        }))
      : [];
    await client.query('commit');
    await fsyncPath(outDir);
    return { method: 'logical-copy', serverVersion, migrations, tables: dumps, sequences, blobs };
  } finally {
    await client.end();
  }
}

/** Rows in any table but the migration state and the backup catalogue: is there anything to lose? */
export async function databaseRowCount(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    let total = 0;
    for (const table of (await publicTables(client)).filter((t) => !NOT_DUMPED.has(t))) {
      const { rows } = await client.query<{ n: string }>(`select count(*) as n from (select 1 from ${quoteIdent(table)} limit 1) t`);
      total += Number(rows[0]?.n ?? 0);
    }
    return total;
  } finally {
    await client.end();
  }
}

/**
 * Loads a dump into the database `databaseUrl` names, replacing whatever its public schema held:
 * tables dropped, the backup's migrations replayed, the data loaded (foreign keys dropped during
 * the load and re-added after, so they are checked once, whatever the order), sequences set,
 * then any migrations newer than the backup applied.
 */
export async function restoreDatabase(
  databaseUrl: string,
  dump: BackupManifest['database'],
  tableFile: (file: string) => string,
  log: Logger,
): Promise<{ tables: number; rows: number; laterMigrations: string[] }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const existing = await publicTables(client);
    if (existing.length) await client.query(`drop table if exists ${existing.map(quoteIdent).join(', ')} cascade`);
    // The migrations' own functions too (the search index's), so replaying them can create them again;
    // an extension's functions stay with their extension.
    const functions = await client.query<{ signature: string }>(
      `select p.oid::regprocedure::text as signature from pg_proc p
        where p.pronamespace = 'public'::regnamespace
          and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')`,
    );
    for (const { signature } of functions.rows) await client.query(`drop function if exists ${signature} cascade`);
  } finally {
    await client.end();
  }

  const orm = await connectOrm(databaseUrl, log);
  let laterMigrations: string[] = [];
  try {
    const known = (await orm.migrator.getPending()).map((m) => m.name);
    const unknown = dump.migrations.filter((m) => !known.includes(m));
    if (unknown.length) {
      throw new Error(`the backup was made by a newer molvault: it has migrations this one does not know (${unknown.join(', ')})`);
    }
    const last = dump.migrations.at(-1);
    if (last) await orm.migrator.up({ to: last });

    const loader = new pg.Client({ connectionString: databaseUrl });
    await loader.connect();
    let rows = 0;
    try {
      await loader.query('begin');
      const foreignKeys = (
        await loader.query<{ tbl: string; name: string; def: string }>(
          `select conrelid::regclass::text as tbl, conname as name, pg_get_constraintdef(oid) as def
             from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace`,
        )
      ).rows;
      for (const fk of foreignKeys) await loader.query(`alter table ${fk.tbl} drop constraint ${quoteIdent(fk.name)}`);
      for (const table of dump.tables) {
        // The backup's rows replace whatever the replayed migrations seeded (a settings row, say).
        await loader.query(`truncate table ${quoteIdent(table.name)}`);
        const sink = loader.query(copyFrom(`copy ${quoteIdent(table.name)} (${table.columns.map(quoteIdent).join(', ')}) from stdin`));
        await pipeline(createReadStream(tableFile(table.file)), createGunzip(), sink);
        rows += table.rows;
      }
      for (const fk of foreignKeys) await loader.query(`alter table ${fk.tbl} add constraint ${quoteIdent(fk.name)} ${fk.def}`);
      for (const sequence of dump.sequences) {
        if (sequence.lastValue === null) continue;
        await loader.query('select setval($1::regclass, $2::bigint, $3)', [quoteIdent(sequence.name), sequence.lastValue, sequence.isCalled]);
      }
      await loader.query('commit');
    } catch (error) {
      await loader.query('rollback').catch(() => {});
      throw error;
    } finally {
      await loader.end();
    }
    laterMigrations = (await orm.migrator.up()).map((m) => m.name);
    return { tables: dump.tables.length, rows, laterMigrations };
  } finally {
    await orm.close();
  }
}
