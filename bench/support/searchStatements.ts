/**
 * The statements bench:search issues, per kind of query, with and without sharing, run straight
 * against a seeded database (`bench:search --keep-database NAME` on DATABASE_URL's server): EXPLAIN
 * ANALYZE of one draw of each kind, and the CPU each kind's statements cost one Postgres backend
 * (on-CPU time from /proc/<pid>/schedstat, so the server must run on this machine), the variants
 * interleaved.
 *
 *   DATABASE_URL=postgres://…/NAME node --import tsx bench/support/searchStatements.ts [--explain KIND] [--only KIND]
 *     [--variants none,shared,empty] [--rounds 5] [--draws 3] [--repeat 20] [--against MODULE]
 *
 * Variants: none, no shares; shared, as bench:search --sharing arranges them (each owner a viewer of
 * one project of each of the next two owners), but only in what the statements are given, so the
 * database is not changed; empty, the same owners sharing a project that holds nothing (what the
 * statement's shape costs apart from the shared rows). BENCH_SEARCH_MODULE names another build of
 * postgres.ts (a copy of an earlier one) to measure instead; --against MODULE measures another build
 * beside this one, its statements in the same rounds (each build's table, and their ratios).
 */
import { parseArgs } from 'node:util';
import { searchQueryOf, searchQuerySchema } from '../../src/api/routes/search/index.js';
import { PostgresSearchIndex } from '../../src/search/postgres.js';
import type { SearchQuery } from '../../src/search/types.js';
import { MIX, prng } from '../search.js';
import { connectMeasuredBackend, loadAverage, projectsByOwner } from './measuredBackend.js';

const { values } = parseArgs({
  options: {
    explain: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    draws: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '20' },
    only: { type: 'string' },
    variants: { type: 'string', default: 'none,shared,empty' },
    against: { type: 'string' },
  },
});
const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL names the seeded database');

/** The SearchQuery the route makes of a query string (routes/search/index.ts). */
function searchQuery(text: string, scope: Pick<SearchQuery, 'ownerId' | 'ownAll' | 'shared'>): SearchQuery {
  return searchQueryOf(searchQuerySchema.parse(Object.fromEntries(new URLSearchParams(text))), scope);
}

const { client, pid, schedNs } = await connectMeasuredBackend(url, 'search statements');
process.stderr.write(`backend pid ${pid}\n`);

const { owners, projectsOf } = await projectsByOwner(client);
// As arrangeSharing: each owner a viewer of the next owner's first project and the one after's second.
const sharedOf = (i: number) =>
  [1, 2].map((step) => ({ ownerId: owners[(i + step) % owners.length], projectIds: [(projectsOf.get(owners[(i + step) % owners.length]) ?? [])[step - 1]] }));

/** What this tool reads of the index's private statement builder. */
interface StatementBuilder {
  statement(query: SearchQuery, present: boolean, sizes: unknown): { text: string; values: unknown[] } | undefined;
  sharedSizes?(query: SearchQuery): Promise<unknown>;
  close(): Promise<void>;
}
// BENCH_SEARCH_MODULE: another build of the index (a copy of an earlier postgres.ts), to compare with.
const Index = process.env.BENCH_SEARCH_MODULE
  ? ((await import(process.env.BENCH_SEARCH_MODULE)).PostgresSearchIndex as typeof PostgresSearchIndex)
  : PostgresSearchIndex;
const index = new Index({ config: { get: () => url } } as never, undefined, 1) as unknown as StatementBuilder;
// --against MODULE: another build's statements too (variants marked "@"), run in the same rounds, so
// that the two builds meet the same load.
const against = values.against
  ? (new ((await import(values.against)).PostgresSearchIndex as typeof PostgresSearchIndex)(
      { config: { get: () => url } } as never,
      undefined,
      1,
    ) as unknown as StatementBuilder)
  : undefined;
// As searchPresented builds it: with the shared owners' document counts it chooses by.
const statementWith = async (builder: StatementBuilder, query: SearchQuery) =>
  builder.statement(query, true, await builder.sharedSizes?.(query)) as { text: string; values: unknown[] } | undefined;

const EMPTY_PROJECT = '00000000-0000-4000-8000-000000000000';
const draws = Number(values.draws);
const random = prng(7);
/** none: no shares; shared: as bench:search --sharing; empty: the same owners sharing a project that holds nothing (the statement's shape, not its rows). */
const ALL_VARIANTS = ['none', 'shared', 'empty'] as const;
type BaseVariant = (typeof ALL_VARIANTS)[number];
/** A variant of this build, or (marked "@") of the --against build. */
type Variant = BaseVariant | `${BaseVariant}@`;
const BASE_VARIANTS = ALL_VARIANTS.filter((v) => (values.variants as string).split(',').includes(v));
const VARIANTS: Variant[] = [...BASE_VARIANTS, ...(against ? BASE_VARIANTS.map((v) => `${v}@` as const) : [])];
interface Draw {
  kind: string;
  statements: Partial<Record<Variant, { text: string; values: unknown[] }>>;
}
const plan: Draw[] = [];
for (const kind of MIX) {
  if (values.only && !kind.name.includes(values.only)) continue;
  for (let d = 0; d < draws; d++) {
    const i = random.int(owners.length);
    let text = kind.make(random);
    if (text.endsWith('project=')) text += projectsOf.get(owners[i])?.[0];
    const base = { ownerId: owners[i], ownAll: true };
    const scopes: Record<BaseVariant, SearchQuery> = {
      none: searchQuery(text, { ...base, shared: [] }),
      shared: searchQuery(text, { ...base, shared: sharedOf(i) }),
      empty: searchQuery(text, { ...base, shared: sharedOf(i).map((g) => ({ ...g, projectIds: [EMPTY_PROJECT] })) }),
    };
    const statements: Draw['statements'] = {};
    for (const variant of ALL_VARIANTS) {
      statements[variant] = await statementWith(index, scopes[variant]);
      if (against) statements[`${variant}@`] = await statementWith(against, scopes[variant]);
    }
    plan.push({ kind: kind.name, statements });
  }
}

let n = 0;
const prepared = new Map<string, string>();
const run = async (s: { text: string; values: unknown[] }) => {
  let name = prepared.get(s.text);
  if (!name) {
    name = `s${n++}`;
    prepared.set(s.text, name);
  }
  return client.query({ name, text: s.text, values: s.values });
};

if (values.explain !== undefined) {
  const draw = plan.find((p) => p.kind.includes(values.explain as string));
  if (!draw) throw new Error(`no kind matches ${values.explain}`);
  for (const variant of VARIANTS) {
    const s = draw.statements[variant];
    if (!s) continue;
    // Run through a prepared statement (generic plan) as the search pool does.
    const name = `e_${variant.replace('@', '_against')}`;
    const prepare = `prepare ${name} as ${s.text}`;
    await client.query(prepare);
    const arrayText = (items: unknown[]) => `{${items.map((x) => (x === null ? 'NULL' : `"${String(x)}"`)).join(',')}}`;
    const literal = s.values.map((v) => (v === null ? 'null' : client.escapeLiteral(Array.isArray(v) ? arrayText(v) : String(v))));
    for (let w = 0; w < 5; w++) await client.query(`execute ${name}(${literal.join(', ')})`);
    const { rows } = await client.query(`explain (analyze, buffers, costs off) execute ${name}(${literal.join(', ')})`);
    process.stdout.write(`\n===== ${draw.kind} — ${variant} =====\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n`);
  }
  await client.end();
  await index.close();
  process.exit(0);
}

const rounds = Number(values.rounds);
const repeat = Number(values.repeat);
const kinds = [...new Set(plan.map((p) => p.kind))];
const spent: Record<string, Partial<Record<Variant, number[]>>> = Object.fromEntries(
  kinds.map((k) => [k, Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]]))]),
);
// Warm: every statement prepared and run a few times.
for (const draw of plan) for (const variant of VARIANTS) for (let w = 0; w < 3; w++) if (draw.statements[variant]) await run(draw.statements[variant]);
for (let round = 0; round < rounds; round++) {
  for (const variant of round % 2 ? [...VARIANTS].reverse() : VARIANTS) {
    for (const kind of kinds) {
      const before = await schedNs();
      let count = 0;
      for (let r = 0; r < repeat; r++) {
        for (const draw of plan) {
          if (draw.kind !== kind || !draw.statements[variant]) continue;
          await run(draw.statements[variant]);
          count++;
        }
      }
      spent[kind][variant]?.push(((await schedNs()) - before) / 1e6 / Math.max(1, count));
    }
  }
}
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
process.stdout.write(`Postgres CPU per statement (ms, median of ${rounds} rounds; ${draws} draws × ${repeat}), load ${await loadAverage()}\n`);
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '' : `${(a / b).toFixed(2)}×`);
const figure = (v: number | undefined) => (v === undefined ? '' : v.toFixed(3));
/** One table per build: this one's, then (--against) the other's, whose variants are marked "@". */
for (const mark of against ? ['', '@'] : ['']) {
  if (against) process.stdout.write(`\n${mark ? `--against ${values.against}` : 'this build'}\n`);
  process.stdout.write(
    `${'kind'.padEnd(28)} ${'none'.padStart(8)} ${'shared'.padStart(8)} ${'ratio'.padStart(7)} ${'empty'.padStart(8)} ${'ratio'.padStart(7)}${against ? ` ${'none vs other'.padStart(14)} ${'shared vs other'.padStart(16)}` : ''}\n`,
  );
  const sums: Partial<Record<Variant, number>> = {};
  const line = (name: string, v: Partial<Record<Variant, number>>) => {
    const at = (base: BaseVariant) => v[`${base}${mark}` as Variant];
    const other = (base: BaseVariant) => v[`${base}${mark ? '' : '@'}` as Variant];
    return (
      `${name.padEnd(28)} ${figure(at('none')).padStart(8)} ${figure(at('shared')).padStart(8)} ${ratio(at('shared'), at('none')).padStart(7)} ` +
      `${figure(at('empty')).padStart(8)} ${ratio(at('empty'), at('none')).padStart(7)}` +
      (against ? ` ${ratio(at('none'), other('none')).padStart(14)} ${ratio(at('shared'), other('shared')).padStart(16)}` : '') +
      '\n'
    );
  };
  for (const kind of kinds) {
    const v = Object.fromEntries(VARIANTS.map((variant) => [variant, median(spent[kind][variant] ?? [])])) as Partial<Record<Variant, number>>;
    for (const k of VARIANTS) sums[k] = (sums[k] ?? 0) + (v[k] ?? 0) / kinds.length;
    process.stdout.write(line(kind, v));
  }
  process.stdout.write(line('all kinds (mean)', sums));
}
await against?.close();
await index.close();
await client.end();
