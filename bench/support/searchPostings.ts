/**
 * What a one-word search would cost read from a posting list (a btree of (keyed word, document),
 * read index-only) instead of the keyed GIN index and a heap row per match, on a kept bench:search
 * database. Built in a scratch schema from search_documents' keyed words (one row per document and
 * keyed lexeme, owner's and project's keys alike):
 *  - narrow: what finding, counting and ranking read (document, owner, project, trash flag, and the
 *    lexeme's share of ts_rank, below);
 *  - wide: the same and what facets, filters and sorts read (kind, format, method, ligand flag,
 *    atoms, resolution, creation time, name), as the tag index (search_document_tags) carries.
 * ts_rank of a query without AND (calc_rank_or) adds up, lexeme by lexeme of the document that a
 * query operand matches, a value of that lexeme's positions and weights alone, in float4 and in
 * lexeme order. So each posting carries that value (`share`, computed as Postgres computes it) and a
 * document's rank is their float4 sum in key order; the tool checks that this equals ts_rank for
 * every owner × word, and that the posting list finds the same documents as the GIN path.
 * Measured: the `matched` step of a one-word (prefix) search, found, filtered (trash, owner/project),
 * counted and cut to its best 51 by rank, through the GIN index and heap rows (as search/postgres.ts
 * does) or the posting list, without shares (one arm) and with the bench's (three arms: the owner's
 * key and two shared projects' keys), every owner × word in turn, interleaved round by round; one
 * Postgres backend's on-CPU time (/proc/<pid>/schedstat) per statement, median of the rounds. The
 * scratch schema is dropped at the end (--keep keeps it).
 *
 *   DATABASE_URL=postgres://…/NAME node --import tsx bench/support/searchPostings.ts [--rounds 7] [--words kinase,lysozyme] [--keep]
 */
import { loadAverage, projectsByOwner, wordStudy } from './measuredBackend.js';

const { client, schedNs, rounds, words, keep } = await wordStudy('search postings', {
  rounds: 7,
  words: 'kinase,protease,lysozyme,polymerase,receptor,kin,pro,rec',
});

const S = 'search_postings_study';
const step = async (what: string, sql: string) => {
  const started = Date.now();
  await client.query(sql);
  process.stderr.write(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
};
await client.query(`drop schema if exists ${S} cascade`);
await client.query(`create schema ${S}`);
// calc_rank_or's term for one lexeme (tsrank.c), in float4 as there: resj = Σ w(pos_j) / (j+1)², wjm the
// first largest weight (at jm); the term is (wjm + resj − wjm / (jm+1)²), divided in float8 by π²/6
// when added. Default weights D 0.1, C 0.2, B 0.4, A 1.0; a lexeme without positions counts as one D.
await client.query(`create function ${S}.share(weights text[]) returns float8 language plpgsql immutable as $$
  declare resj real := 0; wjm real := -1; jm integer := 0; w real; j integer := 0;
  begin
    foreach w in array (select array_agg(case x when 'A' then 1.0::real when 'B' then 0.4::real when 'C' then 0.2::real else 0.1::real end order by n)
                        from unnest(coalesce(nullif(weights, '{}'), array['D'])) with ordinality u(x, n)) loop
      resj := resj + w / ((j + 1) * (j + 1))::real;
      if w > wjm then wjm := w; jm := j; end if;
      j := j + 1;
    end loop;
    return (wjm + resj - wjm / ((jm + 1) * (jm + 1))::real)::float8 / 1.64493406685::float8;
  end $$`);
// A document's rank from its matching lexemes' shares in key order: res = float4(res + share), as calc_rank_or adds.
await client.query(`create function ${S}.fold(shares float8[]) returns real language plpgsql immutable as $$
  declare res real := 0; s float8;
  begin foreach s in array shares loop res := (res::float8 + s)::real; end loop; return res; end $$`);
const carried = 'kind, format, method, has_ligand, atoms, resolution, created_at, lower(name) as name';
await step(
  'narrow posting list',
  `create table ${S}.narrow as
     select u.lexeme collate "C" as key, d.structure_id, d.owner_id, d.project_id, d.deleted, ${S}.share(u.weights) as share
     from search_documents d, unnest(d.scoped_document) u order by 1, 2`,
);
await step('its index', `create index on ${S}.narrow (key, structure_id) include (owner_id, project_id, deleted, share)`);
await step(
  'wide posting list',
  `create table ${S}.wide as
     select u.lexeme collate "C" as key, d.structure_id, d.owner_id, d.project_id, d.deleted, ${S}.share(u.weights) as share, ${carried}
     from search_documents d, unnest(d.scoped_document) u order by 1, 2`,
);
await step(
  'its index',
  `create index on ${S}.wide (key, structure_id) include (owner_id, project_id, deleted, share, kind, format, method, has_ligand, atoms, resolution, created_at, name)`,
);
await step('vacuum (index-only reads need all-visible pages)', `vacuum analyze ${S}.narrow, ${S}.wide`);
const sizes = (
  await client.query(
    `select c.relname, pg_size_pretty(pg_relation_size(c.oid)) as size from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = '${S}' and c.relkind in ('r', 'i') order by 1`,
  )
).rows;
process.stderr.write(`${sizes.map((r) => `${r.relname} ${r.size}`).join(', ')}\n`);

const { owners, projectsOf } = await projectsByOwner(client);

// The rank is the GIN path's ts_rank and the posting list's fold (one share: its float4, the fold's first step).
const tail = `select (select count(*) from m) as total,
  (select array_agg(structure_id::text || ' ' || score::text order by score desc, structure_id desc)
   from (select structure_id, score from m order by score desc, structure_id desc limit 51) x) as page`;
/** Arms: $1 keyed word, $2 owner, $3 project (null for the owner's own arm), then the next arm's. */
const arm = (i: number) => ({ key: `$${3 * i + 1}::text`, owner: `$${3 * i + 2}::uuid`, project: `$${3 * i + 3}::uuid` });
const visible = (a: string, i: number) => {
  const { owner, project } = arm(i);
  return `(${a}.owner_id = ${owner} and (${project} is null or ${a}.project_id = ${project})) is true`;
};
const gin = (arms: number) =>
  `with m as materialized (${Array.from({ length: arms }, (_, i) => {
    const query = `(quote_literal(${arm(i).key}) || ':*')::tsquery`;
    return `select d.structure_id, ts_rank(d.scoped_document, ${query})::float8 as score from search_documents d
      where d.scoped_document @@ ${query} and not d.deleted and ${visible('d', i)}`;
  }).join(' union all ')}) ${tail}`;
const posting = (table: string, arms: number) =>
  `with m as materialized (${Array.from({ length: arms }, (_, i) => {
    const { key } = arm(i);
    return `select p.structure_id, (case when count(*) = 1 then min(p.share)::real else ${S}.fold(array_agg(p.share)) end)::float8 as score
      from ${S}.${table} p
      where p.key >= ${key} and p.key < ${key} || chr(1114111) and starts_with(p.key, ${key}) and not p.deleted and ${visible('p', i)}
      group by p.structure_id`;
  }).join(' union all ')}) ${tail}`;

interface Statement {
  variant: string;
  text: string;
  values: unknown[];
}
const statements: Statement[] = [];
for (let i = 0; i < owners.length; i++) {
  // As bench:search --sharing: each owner a viewer of the next owner's first project and the one after's second.
  const shares = [1, 2].map((n) => ({ owner: owners[(i + n) % owners.length], project: (projectsOf.get(owners[(i + n) % owners.length]) ?? [])[n - 1] }));
  const [{ key: ownerKey }] = (await client.query('select search_owner_key($1) as key', [owners[i]])).rows;
  const projectKeys = await Promise.all(shares.map(async (s) => (await client.query('select search_project_key($1) as key', [s.project])).rows[0].key));
  for (const word of words) {
    const armValues = [[`${ownerKey}:${word}`, owners[i], null], ...shares.map((s, n) => [`${projectKeys[n]}:${word}`, s.owner, s.project])];
    for (const [sharing, arms] of [
      ['none', 1],
      ['shared', 3],
    ] as const) {
      const values = armValues.slice(0, arms).flat();
      statements.push({ variant: `${sharing} gin`, text: gin(arms), values });
      statements.push({ variant: `${sharing} narrow`, text: posting('narrow', arms), values });
      statements.push({ variant: `${sharing} wide`, text: posting('wide', arms), values });
    }
  }
}

let prepared = 0;
const names = new Map<string, string>();
const run = (s: Statement) => {
  let name = names.get(s.text);
  if (!name) {
    name = `postings_${prepared++}`;
    names.set(s.text, name);
  }
  return client.query({ name, text: s.text, values: s.values });
};

// The posting list must find what the GIN path finds, ranked the same (the page: ids and scores, in order).
let differ = 0;
const matches: Record<string, number[]> = {};
for (let i = 0; i < statements.length; i += 3) {
  const rows = [];
  for (const s of statements.slice(i, i + 3)) rows.push((await run(s)).rows[0]);
  const [reference, ...others] = rows;
  const sharing = statements[i].variant.split(' ')[0];
  matches[sharing] = [...(matches[sharing] ?? []), Number(reference.total)];
  for (const other of others) if (other.total !== reference.total || JSON.stringify(other.page) !== JSON.stringify(reference.page)) differ++;
}
// Every document's rank, not only the pages': ts_rank against the fold of its shares, for every owner's key and word.
const [ranks] = (
  await client.query(
    `with q as (select search_owner_key(o.owner_id) || ':' || w as key, o.owner_id from (select distinct owner_id from search_documents) o, unnest($1::text[]) w),
     r as (select ts_rank(d.scoped_document, (quote_literal(q.key) || ':*')::tsquery) as reference,
                  (select ${S}.fold(array_agg(p.share order by p.key)) from ${S}.narrow p
                   where p.key >= q.key and p.key < q.key || chr(1114111) and starts_with(p.key, q.key) and p.structure_id = d.structure_id) as folded
           from q join search_documents d on d.owner_id = q.owner_id and d.scoped_document @@ (quote_literal(q.key) || ':*')::tsquery)
     select count(*) as documents, count(*) filter (where reference is distinct from folded) as differ from r`,
    [words],
  )
).rows;
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
process.stdout.write(
  `checks: ${differ} of ${(statements.length / 3) * 2} posting statements' pages or totals differ from the GIN path's; ` +
    `ranks of ${ranks.documents} (document, owner's word) pairs: ${ranks.differ} differ from ts_rank\n` +
    `matches per statement: none ${mean(matches.none).toFixed(0)}, shared ${mean(matches.shared).toFixed(0)}\n`,
);

const variants = [...new Set(statements.map((s) => s.variant))];
const spent: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
for (const s of statements) await run(s);
for (let round = 0; round < rounds; round++) {
  for (const variant of round % 2 ? [...variants].reverse() : variants) {
    const list = statements.filter((s) => s.variant === variant);
    const before = await schedNs();
    for (const s of list) await run(s);
    spent[variant].push(((await schedNs()) - before) / 1e6 / list.length);
  }
}
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
process.stdout.write(
  `Postgres CPU per statement (ms, median of ${rounds} rounds; ${owners.length} owners × ${words.length} words), load ${await loadAverage()}\n`,
);
process.stdout.write(`${'path'.padEnd(10)} ${'none'.padStart(8)} ${'shared'.padStart(8)} ${'ratio'.padStart(7)} ${'shares add'.padStart(11)}\n`);
for (const path of ['gin', 'narrow', 'wide']) {
  const none = median(spent[`none ${path}`]);
  const shared = median(spent[`shared ${path}`]);
  process.stdout.write(
    `${path.padEnd(10)} ${none.toFixed(3).padStart(8)} ${shared.toFixed(3).padStart(8)} ${`${(shared / none).toFixed(2)}×`.padStart(7)} ${(shared - none).toFixed(3).padStart(11)}\n`,
  );
}
if (!keep) await client.query(`drop schema ${S} cascade`);
await client.end();
