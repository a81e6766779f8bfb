/**
 * What a text search's matches cost per match under other physical layouts of the documents, on a
 * kept bench:search database: the matches of one word found through the keyed GIN index, filtered
 * (trash, owner) and ranked with ts_rank, as the search statement's `matched` step does, against
 * copies of search_documents built in a scratch schema:
 *  - as_is: search_documents itself;
 *  - clustered: every column, the rows written in (owner, project) order (as CLUSTER would leave them);
 *  - narrow: only what finding, filtering and ranking read (id, owner, project, trash flag, words), in
 *    no particular order;
 *  - narrow_clustered: the same, in (owner, project) order;
 *  - reordered: every column, in search_documents' order of rows, the words placed before the
 *    variable-width columns (a row is read column by column up to the last one a step needs).
 * Each statement runs for every owner and every word in turn (so that the pages read are those of
 * many searches, not one search's kept in the CPU's caches), the layouts interleaved round by round;
 * the figure is one Postgres backend's on-CPU time (/proc/<pid>/schedstat) per statement, median of
 * the rounds, without ranking (find + filter) and with it. The scratch schema is dropped at the end.
 *
 *   DATABASE_URL=postgres://…/NAME node --import tsx bench/support/searchLayout.ts [--rounds 5] [--words kinase,lysozyme] [--keep]
 */
import { loadAverage, wordStudy } from './measuredBackend.js';

const { client, schedNs, rounds, words, keep } = await wordStudy('search layout', {
  rounds: 5,
  words: 'kinase,protease,lysozyme,thrombin,oxidase,collagen,integrase',
});
const owners = (await client.query<{ id: string }>('select distinct owner_id as id from search_documents order by 1')).rows.map((r) => r.id);

const NARROW = 'structure_id, owner_id, project_id, deleted, scoped_document';
const CLUSTERED = 'order by owner_id, project_id, structure_id';
/** The copies: what each holds and in what order its rows are written. */
const COPIES: Record<string, { columns: string; order: string }> = {
  clustered: { columns: '*', order: CLUSTERED },
  narrow: { columns: NARROW, order: 'order by md5(structure_id::text)' },
  narrow_clustered: { columns: NARROW, order: CLUSTERED },
  reordered: { columns: '', order: 'order by ctid' },
};
// search_documents' columns with the words moved to just after the last fixed-width column before them.
const columnNames = (
  await client.query<{ name: string; width: number }>(
    `select attname as name, attlen as width from pg_attribute where attrelid = 'search_documents'::regclass and attnum > 0 and not attisdropped order by attnum`,
  )
).rows;
const fixed = columnNames.filter((c) => c.width > 0).map((c) => c.name);
const variable = columnNames.filter((c) => c.width < 0 && c.name !== 'scoped_document').map((c) => c.name);
COPIES.reordered.columns = [...fixed, 'scoped_document', ...variable].join(', ');
process.stderr.write('building the copies…\n');
await client.query('drop schema if exists search_layout cascade; create schema search_layout');
for (const [name, { columns, order }] of Object.entries(COPIES)) {
  const table = `search_layout.${name}`;
  // As search_documents keeps them: the words uncompressed in the row (toast_tuple_target), else ts_rank decompresses them.
  await client.query(`create table ${table} with (toast_tuple_target = 8160) as select ${columns} from search_documents limit 0`);
  await client.query(`alter table ${table} alter column scoped_document set storage main`);
  await client.query(`insert into ${table} select ${columns} from search_documents ${order}`);
  await client.query(`create index on ${table} using gin (scoped_document)`);
  await client.query(`vacuum analyze ${table}`);
}
const tables: Record<string, string> = { as_is: 'search_documents', ...Object.fromEntries(Object.keys(COPIES).map((n) => [n, `search_layout.${n}`])) };
const pages = await client.query<{ name: string; pages: number }>(
  `select c.oid::regclass::text as name, c.relpages as pages from pg_class c where c.oid = any(array[${Object.values(tables)
    .map((t) => `'${t}'::regclass`)
    .join(', ')}])`,
);

const statement = (table: string, rank: boolean) =>
  `with q as materialized (select (quote_literal(search_owner_key($1::uuid) || ':' || $2::text) || ':*')::tsquery as query)
   select count(*) as n${rank ? ', sum(ts_rank(d.scoped_document, (select query from q))) as rank' : ''}
   from ${table} d where d.scoped_document @@ (select query from q) and not d.deleted and (d.owner_id = $1::uuid) is true`;
const variants = Object.entries(tables).flatMap(([name, table]) => [
  { name: `${name} find`, text: statement(table, false) },
  { name: `${name} find + rank`, text: statement(table, true) },
]);
const spent = new Map(variants.map((v) => [v.name, [] as number[]]));
let matches = 0;
for (let round = -1; round < rounds; round++) {
  for (const variant of round % 2 ? [...variants].reverse() : variants) {
    const before = await schedNs();
    let count = 0;
    for (const word of words) {
      for (const owner of owners) {
        const { rows } = await client.query({ name: variant.name, text: variant.text, values: [owner, word] });
        if (round === -1 && variant === variants[0]) matches += Number(rows[0].n);
        count++;
      }
    }
    // Round -1 warms every statement up (prepared, its pages in shared buffers) and is not counted.
    if (round >= 0) spent.get(variant.name)?.push(((await schedNs()) - before) / 1e6 / count);
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const perStatement = matches / owners.length / words.length;
process.stdout.write(
  `Postgres CPU per statement (median of ${rounds} rounds, ${owners.length} owners × ${words.length} words, ${perStatement.toFixed(0)} matches a statement), load ${await loadAverage()}\n`,
);
for (const [name, table] of Object.entries(tables)) {
  const find = median(spent.get(`${name} find`) ?? []);
  const ranked = median(spent.get(`${name} find + rank`) ?? []);
  const relpages = pages.rows.find((r) => r.name === table)?.pages;
  process.stdout.write(
    `${name.padEnd(18)} ${String(relpages).padStart(7)} pages  find ${find.toFixed(3)} ms  find + rank ${ranked.toFixed(3)} ms  (${((ranked * 1000) / perStatement).toFixed(2)} µs a match)\n`,
  );
}
if (!keep) await client.query('drop schema search_layout cascade');
await client.end();
