import type { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { asPostgresFailure } from '../lib/infrastructure.js';
import type { Logger } from '../lib/logger.js';
import { STRUCTURE_CARD_CONCAT_ARGS } from './cards.js';
import { highlighter } from './highlight.js';
import { decodeSearchCursor, effectiveSort, encodeSearchCursor, indexTokens, queryTerms, typosAllowed } from './query.js';
import { searchText } from './text.js';
import type { PresentedSearchPage, RebuildProgress, SearchDocument, SearchFacet, SearchIndex, SearchQuery, SearchResult, SearchSort } from './types.js';

/** Vocabulary terms a mistyped word may stand for, closest first. */
const TYPO_ALTERNATIVES = 8;
/** Vocabulary terms are at least this long: shorter words are not searched for typos (as Typesense does). */
const TYPO_MIN_LENGTH = 4;
/** What a rank adds when a document matches the words as typed (each as a word or a prefix): those come before typo matches. */
const AS_TYPED = 100;
/**
 * Bump when indexTokens or vectorText change what a document is indexed by: the drift check then
 * rebuilds the index (search_index_state holds the version the stored documents were built with).
 */
export const SEARCH_TOKENS_VERSION = 2;
/**
 * A shared owner's projects are searched through their own index entries (project-keyed) up to this
 * many of them; beyond, through the owner's (owner-keyed): a key costs an index lookup per word.
 */
export const PROJECT_KEYED_MAX = 16;
/**
 * A shared project's rows are read by themselves (its project index, then a sort) rather than by a
 * walk of its owner's sort index skipping the owner's other documents, when that costs less: a row
 * read and sorted costs about this many index entries walked (EXPLAIN on a 100,000-document index).
 */
const ROW_READ_COST = 10;
/** How long the document counts of owners and projects that decide it are kept (they only choose a plan, never results). */
const SIZES_TTL_MS = 10_000;
/** Facet values returned per facet, most frequent first. */
const FACET_VALUES = 100;

interface SortSpec {
  expr: string;
  direction: 'asc' | 'desc';
  nullable: boolean;
}

const SORT_SPECS: Record<Exclude<SearchSort, 'relevance'>, SortSpec> = {
  created: { expr: 'd.created_at', direction: 'asc', nullable: false },
  '-created': { expr: 'd.created_at', direction: 'desc', nullable: false },
  updated: { expr: 'd.updated_at', direction: 'asc', nullable: false },
  '-updated': { expr: 'd.updated_at', direction: 'desc', nullable: false },
  name: { expr: 'lower(d.name)', direction: 'asc', nullable: false },
  '-name': { expr: 'lower(d.name)', direction: 'desc', nullable: false },
  atoms: { expr: 'd.atoms', direction: 'asc', nullable: true },
  '-atoms': { expr: 'd.atoms', direction: 'desc', nullable: true },
  resolution: { expr: 'd.resolution', direction: 'asc', nullable: true },
  '-resolution': { expr: 'd.resolution', direction: 'desc', nullable: true },
};
const RELEVANCE: SortSpec = { expr: 'score', direction: 'desc', nullable: false };

/** Cast for a cursor value compared with a sort expression. */
const CASTS: Record<string, string> = {
  'd.created_at': 'timestamptz',
  'd.updated_at': 'timestamptz',
  'lower(d.name)': 'text',
  'd.atoms': 'integer',
  'd.resolution': 'double precision',
  score: 'double precision',
};

/** Facets the per-owner counts hold (search_counts), and the column each is counted by. */
const COUNTED_FACETS: Record<Exclude<SearchFacet, 'tag'>, string> = { kind: 'kind', format: 'format', method: 'method' };

type Cursor = [value: string | number | null, id: string];
const isCursor = (v: unknown): v is Cursor =>
  Array.isArray(v) && v.length === 2 && (v[0] === null || typeof v[0] === 'string' || typeof v[0] === 'number') && typeof v[1] === 'string';

/** Numbered parameters ($1, $2, …), so fragments can be written in any order. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

function orderBy(spec: SortSpec, id: string): string {
  const nulls = spec.nullable ? ' nulls last' : '';
  return `${spec.expr} ${spec.direction}${nulls}, ${id} ${spec.direction}`;
}

/** Rows strictly after the cursor in the order of `spec` (nulls last, id breaking ties in the same direction). */
function keyset(spec: SortSpec, id: string, cursor: Cursor, params: Params, cast = CASTS[spec.expr]): string {
  const [value, lastId] = cursor;
  const beyond = spec.direction === 'asc' ? '>' : '<';
  if (value === null) return `(${spec.expr} is null and ${id} ${beyond} ${params.add(lastId, 'uuid')})`;
  const v = params.add(value, cast);
  return `(${spec.expr} ${beyond} ${v} or (${spec.expr} = ${v} and ${id} ${beyond} ${params.add(lastId, 'uuid')})${spec.nullable ? ` or ${spec.expr} is null` : ''})`;
}

/** A document's highlight text and its tsvector's text. */
function weightedText(doc: SearchDocument) {
  const { strong, medium, weak, body } = searchText(doc);
  return { body, vector: vectorText([strong, 'A'], [medium, 'B'], [weak, 'C']) };
}

/**
 * The document's tsvector as text: the tokens both backends index (indexTokens: compounds whole and
 * by their parts), numbered in order and weighted by the field they came from. Built here rather
 * than by to_tsvector, whose parser keeps "1hpv.pdb" or "first_200" whole and nothing else, or
 * splits them differently from the query. Tokens hold only letters, digits, dots, underscores and
 * hyphens: nothing to escape between the quotes. Postgres keeps the first 256 positions of a lexeme
 * and caps positions at 16383 itself.
 */
export function vectorText(...fields: [text: string, weight: 'A' | 'B' | 'C'][]): string {
  const positions = new Map<string, string[]>();
  let position = 0;
  for (const [text, weight] of fields) {
    for (const token of indexTokens(text)) {
      position = Math.min(position + 1, 16383);
      const list = positions.get(token);
      if (!list) positions.set(token, [`${position}${weight}`]);
      else if (list.length < 256) list.push(`${position}${weight}`);
    }
  }
  return [...positions].map(([token, at]) => `'${token}':${at.join(',')}`).join(' ');
}

const COLUMNS = [
  'structure_id',
  'owner_id',
  'project_id',
  'name',
  'kind',
  'format',
  'tags',
  'scoped_tags',
  'method',
  'atoms',
  'residues',
  'chains',
  'resolution',
  'has_ligand',
  'deleted',
  'created_at',
  'updated_at',
  'body',
  'scoped_document',
  'data',
] as const;

/** The columns the tag index (search_document_tags) carries for each document and tag: all a search without words filters or sorts by. */
const TAG_INDEX_COLUMNS = [
  'owner_id',
  'deleted',
  'kind',
  'format',
  'method',
  'project_id',
  'has_ligand',
  'atoms',
  'resolution',
  'created_at',
  'updated_at',
  'name',
] as const;

/**
 * Vocabulary terms (for typo correction): a document's words (not compounds: their parts are words)
 * of a useful length with a letter in them. Inserting one adds its deletion variants
 * (search_term_variants, by trigger), through which a mistyped word finds it.
 */
const vocabularyTerm = (column: string) => `length(${column}) between ${TYPO_MIN_LENGTH} and 40 and ${column} ~ '[[:alpha:]]' and ${column} !~ '[._-]'`;

/** Refills a vocabulary (an owner's or a project's words) from the documents' scoped lexemes, which carry its key. */
const vocabularyRefill = (table: 'search_terms' | 'search_project_terms', column: 'owner_id' | 'project_id', keyFunction: string) =>
  `insert into ${table} (${column}, term)
   select distinct d.${column}, t.term from search_documents d,
     lateral (select substr(u.lexeme, length(${keyFunction}(d.${column})) + 2) as term from unnest(d.scoped_document) u
              where starts_with(u.lexeme, ${keyFunction}(d.${column}) || ':')) t
   where ${vocabularyTerm('t.term')}
   on conflict do nothing`;

/** The statement a search runs, and what reading its rows needs. */
interface SearchStatement {
  text: string;
  values: unknown[];
  sort: SearchSort;
  facets: SearchFacet[];
  words: string[];
}

/**
 * A search's rows: first the header (ord null: total, next cursor, typo corrections, facets), then
 * one row per hit shown, in order (item: the presented structure's JSON, or the bare structure id).
 */
interface SearchRow {
  ord: string | null;
  total: string | null;
  /** JSON [key, id] of the page's last row, when there is a next page. */
  next: string | null;
  /** The vocabulary terms the words were taken to be typos of. */
  corrections: string[] | null;
  item: string | null;
  score: string | null;
  /** The text highlights are cut from (searches with words). */
  body: string | null;
  /**
   * Presented searches (header only): the page as the API shows it, a JSON array of items whose
   * highlights are left as {@link HIGHLIGHTS_GAP}, to be filled in from `bodies`.
   */
  items?: string | null;
  /** Presented searches with words (header only): the texts the items' highlights are cut from, joined by {@link HIGHLIGHTS_GAP}. */
  bodies?: string | null;
  [facet: `facet_${string}`]: string | null;
}

/**
 * Where a presented item's highlights go (they are cut here, from the item's text), and what joins
 * the items' texts: a character JSON text never holds unescaped, and the index takes out of the
 * texts, so splitting at it cannot cut anything else.
 */
const HIGHLIGHTS_GAP = '\u0001';

/** An owner's documents and their projects', from the kept counts. */
interface OwnerSizes {
  at: number;
  total: number;
  projects: Map<string, number>;
}

/**
 * How a shared project's documents are read in a listing (no words, no tags): `auto` chooses by the
 * documents its owner and it hold; `walk` always walks the owner's sort index; `rows` always reads the
 * project's rows. The last two are for tests, which check that both give the same results.
 */
export type SharedProjectReads = 'auto' | 'walk' | 'rows';

/** Prepared statements kept per connection: search texts vary only with the filters used, so few recur. */
const PREPARED_STATEMENTS = 200;

/**
 * Postgres full-text search. Words and tags are indexed under their owner's key (see the
 * search_scoped migration), so an owner's search reads only that owner's index entries, and under
 * their project's key (search_project_keys), so a search by someone a project is shared with reads
 * only that project's; prefixes match through `:*`, typos through per-owner and per-project
 * vocabularies; totals and facets come from per-owner counts kept by triggers whenever a search has
 * no words, tags or ranges.
 */
export class PostgresSearchIndex implements SearchIndex {
  readonly backend = 'postgres' as const;
  private pool?: pg.Pool;
  private readonly statementNames = new Map<string, string>();
  private readonly sizes = new Map<string, OwnerSizes>();

  constructor(
    private readonly orm: MikroORM,
    private readonly log?: Logger,
    /** Connections of the search pool (a search holds one for a single statement). */
    private readonly connections = 4,
    private readonly sharedProjectReads: SharedProjectReads = 'auto',
  ) {}

  private get connection() {
    return this.orm.em.getConnection();
  }

  /**
   * Searches run on a small pool of their own: each statement is prepared (named) once per connection
   * and always runs its generic plan (plan_cache_mode), so a search is planned once per connection
   * instead of once per request. Planning these statements cost as much as running them, measured,
   * and Postgres kept choosing custom plans by itself; the generic plans are the same ones (every
   * search is led by its owner's index entries). No JIT and no parallel workers: these statements are
   * far too short for either (a union of a shared search's arms was planned with two workers, whose
   * start took longer than the search).
   * No prefetching (effective_io_concurrency=0): a search reads a few hundred heap pages the OS
   * already holds, and announcing each one first cost a tenth of Postgres's time per search (measured).
   */
  private async query<T>(text: string, values: unknown[]): Promise<T[]> {
    this.pool ??= this.createPool();
    let name = this.statementNames.get(text);
    if (!name && this.statementNames.size < PREPARED_STATEMENTS) {
      name = `molvault_search_${this.statementNames.size}`;
      this.statementNames.set(text, name);
    }
    try {
      return (await this.pool.query({ name, text, values })).rows as T[];
    } catch (error) {
      throw asPostgresFailure(error);
    }
  }

  private createPool(): pg.Pool {
    const pool = new pg.Pool({
      connectionString: this.orm.config.get('clientUrl'),
      max: this.connections,
      // Kept open however long idle (pg closes an idle one after 10 s by default): a new connection's
      // backend faults in each page of shared memory it touches for the first time, and that cost lasts
      // thousands of searches.
      idleTimeoutMillis: 0,
      application_name: 'molvault search',
      options: '-c plan_cache_mode=force_generic_plan -c jit=off -c effective_io_concurrency=0 -c max_parallel_workers_per_gather=0',
    });
    // An idle connection the server drops must not take the process down; the query in flight fails on its own.
    pool.on('error', (error) => this.log?.warn({ err: error }, 'search connection to Postgres failed'));
    return pool;
  }

  async prepare(): Promise<void> {}

  /** True when documents were indexed by an older tokenizer (SEARCH_TOKENS_VERSION): a rebuild re-tokenizes them. */
  async needsRebuild(): Promise<boolean> {
    const [state] = await this.connection.execute<{ tokens_version: number }[]>('select tokens_version from search_index_state');
    return (state?.tokens_version ?? 0) < SEARCH_TOKENS_VERSION;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.statementNames.clear();
    await pool?.end();
  }

  async upsert(doc: SearchDocument): Promise<void> {
    await this.upsertMany([doc]);
  }

  /**
   * One statement: rows from a JSON array, the owner-scoped tsvector and tags built in SQL, new words
   * added to the owner's vocabulary. The count triggers keep search_counts and search_tag_counts right.
   */
  async upsertMany(docs: SearchDocument[]): Promise<void> {
    if (docs.length === 0) return;
    const rows = docs.map((doc) => {
      const { body, vector } = weightedText(doc);
      return {
        structure_id: doc.structureId,
        owner_id: doc.ownerId,
        project_id: doc.projectId,
        name: doc.name,
        kind: doc.kind,
        format: doc.format ?? null,
        tags: doc.tags,
        method: doc.method ?? null,
        atoms: doc.atoms ?? null,
        residues: doc.residues ?? null,
        chains: doc.chains ?? null,
        resolution: doc.resolution ?? null,
        has_ligand: doc.ligands.length > 0,
        deleted: doc.deleted,
        created_at: new Date(doc.createdAt).toISOString(),
        updated_at: new Date(doc.updatedAt).toISOString(),
        body,
        vector_text: vector,
        data: doc,
      };
    });
    const updates = COLUMNS.filter((c) => c !== 'structure_id')
      .map((c) => `${c} = excluded.${c}`)
      .join(', ');
    // Documents are written in id order, so concurrent batches lock rows (and then counts) in one order.
    await this.connection.execute(
      `with input as (
         select r.*, coalesce(r.tags, '{}') as all_tags, r.vector_text::tsvector as vector
         from jsonb_to_recordset(?::jsonb) as r(
           structure_id uuid, owner_id uuid, project_id uuid, name text, kind text, format text, tags text[], method text,
           atoms integer, residues integer, chains integer, resolution double precision, has_ligand boolean, deleted boolean,
           created_at timestamptz, updated_at timestamptz, body text, vector_text text, data jsonb)
       ),
       written as (
         insert into search_documents (${COLUMNS.join(', ')}, indexed_at)
         select structure_id, owner_id, project_id, name, kind, format, all_tags, search_index_tags(owner_id, project_id, all_tags), method, atoms,
                residues, chains, resolution, has_ligand, deleted, created_at, updated_at, body, search_index_tsvector(owner_id, project_id, vector),
                data, now()
         from input order by structure_id
         on conflict (structure_id) do update set ${updates}, indexed_at = now()
         returning structure_id
       ),
       -- A document's tag rows are written only through its written row (and so after it, under its lock):
       -- writers then take rows in one order, documents first.
       untagged as (
         delete from search_document_tags t using input i, written w
         where w.structure_id = i.structure_id and t.structure_id = i.structure_id and not (t.tag = any(i.all_tags))
       ),
       tagged as (
         insert into search_document_tags (structure_id, tag, ${TAG_INDEX_COLUMNS.join(', ')})
         select distinct i.structure_id, tag, ${TAG_INDEX_COLUMNS.map((c) => `i.${c}`).join(', ')}
         from written w join input i on i.structure_id = w.structure_id, unnest(i.all_tags) as tag order by 1, 2
         on conflict (structure_id, tag) do update set ${TAG_INDEX_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}
       )
       -- (Each project's vocabulary is kept by triggers on the documents: the search_project_terms_kept migration.)
       insert into search_terms (owner_id, term)
       select distinct i.owner_id, t.lexeme from input i, unnest(i.vector) t
       where ${vocabularyTerm('t.lexeme')}
       on conflict do nothing`,
      [JSON.stringify(rows)],
    );
  }

  async delete(structureId: string): Promise<void> {
    await this.connection.execute('delete from search_documents where structure_id = ?', [structureId]);
  }

  async get(structureIds: string[]): Promise<Map<string, SearchDocument>> {
    if (structureIds.length === 0) return new Map();
    const rows = await this.connection.execute<{ data: SearchDocument }[]>('select data from search_documents where structure_id = any(?::uuid[])', [
      `{${structureIds.join(',')}}`,
    ]);
    return new Map(rows.map(({ data }) => [data.structureId, { ...data, createdAt: new Date(data.createdAt), updatedAt: new Date(data.updatedAt) }]));
  }

  async count(): Promise<number> {
    const [row] = await this.connection.execute<{ n: string }[]>('select count(*) as n from search_documents');
    return Number(row?.n ?? 0);
  }

  async *ids(): AsyncIterable<string[]> {
    let after: string | undefined;
    for (;;) {
      const rows = await this.connection.execute<{ structure_id: string }[]>(
        `select structure_id from search_documents ${after ? 'where structure_id > ?' : ''} order by structure_id limit 5000`,
        after ? [after] : [],
      );
      if (rows.length === 0) return;
      after = rows[rows.length - 1].structure_id;
      yield rows.map((r) => r.structure_id);
    }
  }

  /**
   * Upserts every document, then removes rows not written since the rebuild began (their structures
   * are gone), and rebuilds the vocabulary and recounts the per-owner counts from the documents, in
   * one transaction. Searches keep working throughout.
   */
  async rebuild(batches: AsyncIterable<SearchDocument[]>, total: number, onProgress?: (progress: RebuildProgress) => void): Promise<void> {
    const [{ started }] = await this.connection.execute<{ started: string }[]>('select now()::text as started');
    let done = 0;
    onProgress?.({ done, total });
    for await (const batch of batches) {
      await this.upsertMany(batch);
      done += batch.length;
      onProgress?.({ done, total });
    }
    const em = this.orm.em.fork();
    await em.transactional(async (tx) => {
      await tx.execute('delete from search_documents where indexed_at < ?::timestamptz', [started]);
      await tx.execute('delete from search_terms');
      await tx.execute('delete from search_project_terms');
      // Refilled by the triggers on search_terms and search_project_terms as the terms go back in: variants of words no longer used go.
      await tx.execute('delete from search_term_variants');
      await tx.execute(vocabularyRefill('search_terms', 'owner_id', 'search_owner_key'));
      await tx.execute(vocabularyRefill('search_project_terms', 'project_id', 'search_project_key'));
      await recountSearchCounts(tx);
      await tx.execute('update search_index_state set tokens_version = ?', [SEARCH_TOKENS_VERSION]);
    });
  }

  /**
   * The documents of the owners whose projects are shared with the searcher (kept counts, cached for
   * a few seconds): a listing reads a small shared project by its own rows, a large one by a walk of
   * its owner's sort index. Only searches without words or tags read either way.
   */
  private async sharedSizes(query: SearchQuery): Promise<Map<string, OwnerSizes> | undefined> {
    if (this.sharedProjectReads !== 'auto' || queryTerms(query.q).length > 0 || query.tags?.length || !query.shared?.length) return undefined;
    const now = Date.now();
    const owners = [...new Set(query.shared.map((g) => g.ownerId))];
    const missing = owners.filter((id) => {
      const known = this.sizes.get(id);
      return !known || now - known.at > SIZES_TTL_MS;
    });
    if (missing.length > 0) {
      const rows = await this.query<{ owner_id: string; project_id: string; documents: string }>(
        'select owner_id, project_id, sum(documents) as documents from search_counts where owner_id = any($1::uuid[]) group by 1, 2',
        [missing],
      );
      if (this.sizes.size > 10_000) this.sizes.clear();
      for (const id of missing) this.sizes.set(id, { at: now, total: 0, projects: new Map() });
      for (const row of rows) {
        const owner = this.sizes.get(row.owner_id) as OwnerSizes;
        owner.total += Number(row.documents);
        owner.projects.set(row.project_id, Number(row.documents));
      }
    }
    return new Map(owners.map((id) => [id, this.sizes.get(id) as OwnerSizes]));
  }

  async search(query: SearchQuery): Promise<SearchResult> {
    const statement = this.statement(query, false, await this.sharedSizes(query));
    if (!statement) return { hits: [], total: 0, facets: {}, nextCursor: null };
    const { header, items, highlight } = await this.run(statement);
    return {
      ...this.outcome(statement, header),
      hits: items.map((row) => ({ structureId: row.item as string, score: Number(row.score), highlights: highlight(row) })),
    };
  }

  /**
   * The page presented as the API shows it, in the search's own statement (each structure checked
   * against its owner), as one row: Postgres joins the items' JSON into one text, and the highlights,
   * cut here, are put into their gaps. Reading and joining fifty rows' texts here cost the API a
   * tenth of its time per search.
   */
  async searchPresented(query: SearchQuery): Promise<PresentedSearchPage> {
    const statement = this.statement(query, true, await this.sharedSizes(query));
    if (!statement) return { itemsJson: ['[]'], total: 0, facets: {}, nextCursor: null };
    const [header] = await this.query<SearchRow>(statement.text, statement.values);
    const items = header.items ?? '[]';
    const page = this.outcome(statement, header);
    if (header.bodies === null || header.bodies === undefined) return { ...page, itemsJson: [items] };
    const bodies = header.bodies.split(HIGHLIGHTS_GAP);
    const parts = items.split(HIGHLIGHTS_GAP);
    // A text indexed before control characters were taken out could still hold the gap: then no highlights rather than wrong ones.
    const cut = bodies.length === parts.length - 1 ? highlighter(statement.words, header.corrections ?? []) : () => undefined;
    // The pieces stay apart: joined, one highlight's "…" would widen the whole page to two bytes a character.
    const itemsJson = [parts[0]];
    for (let i = 1; i < parts.length; i++) {
      const shown = cut(bodies[i - 1]);
      itemsJson.push(shown ? `[${JSON.stringify(shown)}]` : '[]', parts[i]);
    }
    return { ...page, itemsJson };
  }

  private async run(statement: SearchStatement) {
    const rows = await this.query<SearchRow>(statement.text, statement.values);
    const header = rows.find((row) => row.ord === null) as SearchRow;
    const items = rows.filter((row) => row.ord !== null).sort((a, b) => Number(a.ord) - Number(b.ord));
    const cut = highlighter(statement.words, header.corrections ?? []);
    const highlight = (row: SearchRow): string[] => {
      const shown = row.body === null ? undefined : cut(row.body);
      return shown ? [shown] : [];
    };
    return { header, items, highlight };
  }

  private outcome({ sort, facets }: SearchStatement, header: SearchRow) {
    return {
      total: Number(header.total),
      facets: Object.fromEntries(facets.map((f) => [f, JSON.parse(header[`facet_${f}`] ?? '{}')])) as SearchResult['facets'],
      nextCursor: header.next ? encodeSearchCursor(sort, JSON.parse(header.next)) : null,
    };
  }

  /**
   * One statement: a header row (total, facets, next cursor, typo corrections), then the page's rows.
   *  - With words or tags, or facets the counts cannot give, the matched rows are gathered once
   *    (words and tags through their owner-scoped GIN indexes) and counted, faceted and ordered from memory.
   *  - Otherwise the page is an index-only walk of the sort's (owner, key, id) index from the keyset
   *    cursor, and the total and facets come from the per-owner counts when the filters are ones they
   *    are kept by (trash, kind, format, method, project, ligand), else from a count of the filter.
   */
  private statement(query: SearchQuery, present: boolean, sizes?: Map<string, OwnerSizes>): SearchStatement | undefined {
    const terms = queryTerms(query.q);
    const words = terms.flatMap((t) => t.parts);
    const groups = terms.flatMap((t, i) => t.parts.map(() => i + 1));
    const typos = words.map(typosAllowed);
    if (query.q?.trim() && words.length === 0) return undefined;
    const sort = effectiveSort(query);
    const spec = sort === 'relevance' ? RELEVANCE : SORT_SPECS[sort];
    const cursor = decodeSearchCursor(query.cursor, sort, isCursor);
    const facets = [...new Set(query.facets ?? [])];
    const params = new Params();
    // Shared projects: the caller's own documents (owner-led, as without sharing), or'ed with each
    // sharing owner's documents in the shared projects. Without shares the statement is unchanged.
    // (Parameters are added only where used: Postgres cannot type one the text never mentions.)
    const ownAll = query.ownAll ?? true;
    // One group per owner, none of the caller's own when all of theirs match anyway: the arms of the
    // visibility condition must not overlap, since counts are summed over them.
    const byOwner = new Map<string, Set<string>>();
    for (const group of query.shared ?? []) {
      if (ownAll && group.ownerId === query.ownerId) continue;
      const projects = byOwner.get(group.ownerId) ?? new Set<string>();
      // A project filter leaves only that project of the shares (the other arms could match nothing).
      for (const id of group.projectIds) if (query.projectId === undefined || id === query.projectId) projects.add(id);
      byOwner.set(group.ownerId, projects);
    }
    const shared = [...byOwner]
      .map(([ownerId, projects]) => ({ ownerId, projectIds: [...projects], byProject: projects.size <= PROJECT_KEYED_MAX }))
      .filter((group) => group.projectIds.length > 0);
    if (!ownAll && shared.length === 0) return undefined;
    const sharing = !ownAll || shared.length > 0;
    const owner = ownAll ? params.add(query.ownerId, 'uuid') : 'null::uuid';
    const ownerIds = [...new Set([...(ownAll ? [query.ownerId] : []), ...shared.map((group) => group.ownerId)])];
    let ownersParam: string | undefined;
    const ownersOf = () => {
      ownersParam ??= params.add(ownerIds, 'uuid[]');
      return ownersParam;
    };
    const ctes: string[] = [];
    const hasText = words.length > 0;
    /**
     * The arms of the visibility condition, one per owner (the caller's own documents, then each
     * sharing owner's in the shared projects), in the order of `ownerIds`. Each arm reads its own
     * index entries: the caller's and an owner's under the owner's key; a shared project's under the
     * project's key, unless the owner shares more than PROJECT_KEYED_MAX projects with the caller.
     *  - on: the condition on a row with owner_id and project_id under alias `a`;
     *  - led: the same, written so that the tag index is read by project for a project-keyed arm
     *    (the owner check then serves no index);
     *  - owner: its owner (a parameter); projects: its shared projects' ids (a parameter) when it
     *    reads their project-keyed entries, else undefined (it reads the owner's).
     *  - listed / counted: what a listing's page walk (and a count the kept counts cannot give) reads
     *    the arm's documents `d` from: by `on` (led by the owner's sort index, skipping the owner's
     *    other projects), or, for shared projects small beside their owner's documents, by their own
     *    rows, project by project through the project index (a lateral read: under the or'ed
     *    project condition the planner scanned another index whole), so that a nearly empty shared
     *    project does not cost a walk of its owner's whole index.
     * Arms never overlap (a document has one owner and one project), so their rows and counts add up.
     */
    const reads = this.sharedProjectReads;
    const arms = [
      ...(ownAll
        ? [
            {
              owner,
              on: (a: string) => `${a}.owner_id = ${owner}`,
              led: (a: string) => `${a}.owner_id = ${owner}`,
              projects: undefined as string | undefined,
              listed: `search_documents d where d.owner_id = ${owner}`,
              counted: `search_documents d where d.owner_id = ${owner}`,
            },
          ]
        : []),
      ...shared.map((group) => {
        const groupOwner = params.add(group.ownerId, 'uuid');
        const projects = params.add(group.projectIds, 'uuid[]');
        const on = (a: string) => `(${a}.owner_id = ${groupOwner} and ${a}.project_id = any(${projects}))`;
        const byRows = `unnest(${projects}) as sp(id) cross join lateral (select * from search_documents d where d.project_id = sp.id offset 0) d
          where (d.owner_id = ${groupOwner}) is true`;
        const byWalk = `search_documents d where ${on('d')}`;
        // A walk passes about (page × owner's documents / shared documents) index entries; reading the
        // rows, the shared documents each cost a row read; a count, the owner's entries against those rows.
        const owned = sizes?.get(group.ownerId);
        const inShared = owned ? group.projectIds.reduce((n, id) => n + (owned.projects.get(id) ?? 0), 0) : 0;
        const listByRows = reads === 'rows' || (owned !== undefined && inShared * inShared * ROW_READ_COST < (query.limit + 1) * owned.total);
        const countByRows = reads === 'rows' || (owned !== undefined && inShared * ROW_READ_COST < owned.total);
        return {
          owner: groupOwner,
          on,
          led: (a: string) =>
            group.byProject
              ? `${a}.project_id = any(${projects}) and (${a}.owner_id = ${groupOwner}) is true`
              : `${a}.owner_id = ${groupOwner} and ${a}.project_id = any(${projects})`,
          projects: group.byProject ? projects : undefined,
          listed: listByRows ? byRows : byWalk,
          counted: countByRows ? byRows : byWalk,
        };
      }),
    ];
    /** The arm's keyed tags for the plain tags `plain`. */
    const keyedTags = (arm: (typeof arms)[number], plain: string) =>
      arm.projects
        ? `(select array_agg(k) from unnest(${arm.projects}) as p, unnest(search_project_tags(p, ${plain})) as k)`
        : `search_scope_tags(${arm.owner}, ${plain})`;
    /** The visibility condition on a row with owner_id and project_id under alias `a`. */
    const visibleTo = (a: string) => (sharing ? `(${arms.map((arm) => arm.on(a)).join(' or ')})` : `${a}.owner_id = ${owner}`);
    // A word is checked against the caller's own vocabulary and each shared project's own (never
    // against a sharing owner's whole vocabulary, which holds words of projects the caller cannot see).
    let sharedProjectsParam: string | undefined;
    const sharedProjects = () => {
      sharedProjectsParam ??= params.add(
        shared.flatMap((group) => group.projectIds),
        'uuid[]',
      );
      return sharedProjectsParam;
    };
    const isTerm = (term: string) =>
      [
        ...(ownAll ? [`exists (select from search_terms t where t.owner_id = ${owner} and t.term = ${term} offset 0)`] : []),
        ...(shared.length ? [`exists (select from search_project_terms t where t.project_id = any(${sharedProjects()}) and t.term = ${term} offset 0)`] : []),
      ].join(' or ');

    if (hasText) {
      // Each word matches as a prefix, or as one of the owner's vocabulary terms within its typo
      // allowance (typosAllowed: Damerau–Levenshtein 1 from 4 letters, 2 from 8, as Typesense counts).
      // Candidates come from the terms' deletion variants (search_term_variants): two strings within
      // distance k share a string made by deleting at most k letters from each, so the lookup misses
      // none; search_typo_distance then keeps those truly within k. A word that is itself one of the
      // caller's terms (their own vocabulary's, or a shared project's) is taken as typed, as Typesense
      // takes a word that finds enough: its typos are not searched for. A compound ("1hpv.pdb") matches by its parts, every one, or as a whole (which
      // only adds to the rank of documents holding it whole).
      // `scoped` finds and ranks; `scoped_strict` (the words as typed, without typo alternatives) puts
      // the documents matching them first, and is null when no alternative was added.
      // The candidates are few: each is looked up in the searched vocabularies by index (`offset 0`
      // keeps the lookup a subplan); as a join, several owners' terms were hashed whole first. The
      // distance (a PL/pgSQL function, the costliest step) is computed once per candidate (`offset 0`
      // keeps it in its lateral subquery): pulled up, it ran in the variants' scan filter for every
      // variant row and again in the sort.
      ctes.push(`words as (
        select w, g, k, ord from unnest(${params.add(words, 'text[]')}, ${params.add(groups, 'integer[]')}, ${params.add(typos, 'integer[]')})
          with ordinality as u(w, g, k, ord))`);
      ctes.push(`corrected as materialized (
        select ord, g, w, array(
          select c.term from (
            select distinct v.term from search_term_variants v
            where k > 0 and v.variant = any(search_typo_variants(w, k)) and v.term <> w
              and not (${isTerm('w')})
          ) c
          cross join lateral (select search_typo_distance(c.term, w) as distance offset 0) d
          where d.distance <= k and (${isTerm('c.term')})
          order by d.distance, c.term limit ${TYPO_ALTERNATIVES}) as terms
        from words
      )`);
      const wholes = params.add(
        terms.map((t) => t.whole ?? null),
        'text[]',
      );
      // The words' query is built as text with a marker where each lexeme starts, then keyed for each
      // arm by putting the arm's key in the marker's place (a word holds no control character).
      const lexeme = (text: string) => `quote_literal(chr(31) || ${text})`;
      /** A prefix in the finding query: the word between two chr(30), made exact per key by search_find_query. */
      const prefix = (text: string) => `chr(30) || ${text} || chr(30)`;
      const asPrefix = (text: string) => `${lexeme(text)} || ':*'`;
      const asWhole = (parts: string, whole = asPrefix) =>
        `case when (${wholes})[g] is null then ${parts} else '(' || ${whole(`(${wholes})[g]`)} || ' | ' || ${parts} || ')' end`;
      const keyedBy = (key: string, text: string) => `replace(${text}, chr(31), ${key} || ':')::tsquery`;
      const ownerKeyed = (ownerParam: string, text: string) => keyedBy(`search_owner_key(${ownerParam})`, text);
      // What finds (never what ranks), with two words or more: `find`, the words' query with each prefix
      // between two chr(30), made exact for a key from the lexemes the index holds under it
      // (search_find_query, the search_lexemes migration); the lexemes starting with a prefix match the
      // same documents it does. The GIN index gathers each prefix's documents whole into a bitmap before
      // intersecting, where it intersects exact entries' as it reads them: for two words several times
      // the work. One word's prefix costs about what its exact lexemes do, less than making them exact.
      const exactPrefixes = words.length > 1;
      const findBy = (key: string) => (exactPrefixes ? `search_find_query(${key}, find)` : `replace(query, chr(31), ${key} || ':')`);
      // `scoped` (`m<arm>` with shares) finds; the owner-keyed `scoped`/`scoped_strict` (`r<arm>`/`s<arm>`
      // with shares, and their arrays by owner, `ranked`/`ranked_strict`) rank. With shares each
      // document is ranked by its owner's keys alone (every document carries them), as its owner's own
      // search ranks it: an or of every arm's copy would cost more per row and rank by another formula.
      const columns = sharing
        ? [
            ...arms.flatMap((arm, i) => [
              `${ownerKeyed(arm.owner, 'query')} as r${i}`,
              `case when query = strict then null else ${ownerKeyed(arm.owner, 'strict')} end as s${i}`,
              ...(arm.projects
                ? [`(select string_agg('(' || ${findBy('search_project_key(p)')} || ')', ' | ') from unnest(${arm.projects}) as p)::tsquery as m${i}`]
                : exactPrefixes
                  ? [`${findBy(`search_owner_key(${arm.owner})`)}::tsquery as m${i}`]
                  : []),
            ]),
          ]
        : [
            `${ownerKeyed(owner, 'query')} as scoped`,
            `case when query = strict then null else ${ownerKeyed(owner, 'strict')} end as scoped_strict`,
            `${exactPrefixes ? `${findBy(`search_owner_key(${owner})`)}::tsquery` : 'null::tsquery'} as found`,
          ];
      // (Else an arm that reads the owner's entries finds by the owner-keyed query it ranks by.)
      const ranked = sharing
        ? [
            ...arms.flatMap((arm, i) => (arm.projects || exactPrefixes ? [] : [`r${i} as m${i}`])),
            `array[${arms.map((_, i) => `r${i}`).join(', ')}] as ranked`,
            `case when s0 is null then null else array[${arms.map((_, i) => `s${i}`).join(', ')}] end as ranked_strict`,
          ]
        : [];
      ctes.push(`q as materialized (
        select *${ranked.map((column) => `, ${column}`).join('')} from (
        select ${columns.join(',\n               ')},
               (select coalesce(array_agg(term), '{}') from corrected, unnest(terms) as term) as corrections
        from (
          select string_agg(loose, ' & ' order by g) as query, string_agg(strict, ' & ' order by g) as strict, string_agg(find, ' & ' order by g) as find
          from (
            select g,
                   ${asWhole(`'(' || string_agg('(' || array_to_string(array[${lexeme('w')} || ':*'] || array(select ${lexeme('t')} from unnest(terms) as t), ' | ') || ')', ' & ' order by ord) || ')'`)} as loose,
                   ${exactPrefixes ? asWhole(`'(' || string_agg('(' || array_to_string(array[${prefix('w')}] || array(select ${lexeme('t')} from unnest(terms) as t), ' | ') || ')', ' & ' order by ord) || ')'`, prefix) : 'null::text'} as find,
                   ${asWhole(`'(' || string_agg(${lexeme('w')} || ':*', ' & ' order by ord) || ')'`)} as strict
            from corrected group by g
          ) per_term
        ) built) keyed
      )`);
    }

    // With words or tags, the keyed GIN entries already hold only the searched owner's (or shared
    // project's) documents, and the visibility check is written so no index serves it: else the
    // planner, not knowing that, would AND the bitmap with the owner's 10,000 entries from a btree.
    // Without them, an owner-led index serves it.
    const scopedByIndex = hasText || !!query.tags?.length;
    // Tags without words are gathered from the tag index (search_document_tags: a row per document and
    // tag, carrying every filter and sort column) by index-only reads of the asked tags' ranges, not by a
    // visit to each tagged document's row; but for the tag facet, which counts the documents' other tags.
    const tags = [...new Set(query.tags ?? [])];
    const byTag = !hasText && tags.length > 0 && !facets.includes('tag');
    const alias = byTag ? 't' : 'd';
    // With shares every path reads each arm by itself (its visibility condition, words and tags: the
    // `armWhere` conditions), so `where` starts without the visibility condition there.
    const where: string[] = [sharing ? 'true' : byTag ? `t.owner_id = ${owner}` : scopedByIndex ? `${visibleTo('d')} is true` : visibleTo('d')];
    const armWhere: ((arm: (typeof arms)[number], i: number) => string)[] = [];
    const counted: string[] = [visibleTo('c')];
    let countable = !hasText;
    // The columns the counts are filtered by beyond owner and trash: the tag counts hold only project.
    const countedColumns: string[] = [];
    if (hasText && sharing) armWhere.push((_, i) => `d.scoped_document @@ (select m${i} from q)`);
    else if (hasText) where.push(`d.scoped_document @@ (select ${words.length > 1 ? 'found' : 'scoped'} from q)`);
    const trash = query.trash ?? 'exclude';
    if (trash !== 'include') {
      const deleted = trash === 'only' ? 'true' : 'false';
      where.push(`${alias}.deleted = ${deleted}`);
      counted.push(`c.deleted = ${deleted}`);
    }
    if (byTag) {
      where.push(`t.tag = any(${params.add(tags, 'text[]')})`);
      countable = false;
    } else if (tags.length && sharing) {
      // The arm's keyed tags find the candidates through the index; the plain tags decide.
      const plain = params.add(tags, 'text[]');
      armWhere.push((arm) => `d.scoped_tags && ${keyedTags(arm, plain)}`);
      where.push(query.tagMode === 'any' ? `d.tags && ${plain}` : `d.tags @> ${plain}`);
      countable = false;
    } else if (tags.length) {
      const scoped = `search_scope_tags(${owner}, ${params.add(tags, 'text[]')})`;
      where.push(query.tagMode === 'any' ? `d.scoped_tags && ${scoped}` : `d.scoped_tags @> ${scoped}`);
      countable = false;
    }
    const equal = (column: string, value: unknown, cast: string) => {
      if (value === undefined) return;
      const v = params.add(value, cast);
      where.push(`${alias}.${column} = ${v}`);
      counted.push(`c.${column} = ${v}`);
      countedColumns.push(column);
    };
    equal('kind', query.kind, 'text');
    equal('format', query.format, 'text');
    equal('project_id', query.projectId, 'uuid');
    equal('method', query.method?.trim().toUpperCase(), 'text');
    equal('has_ligand', query.hasLigand, 'boolean');
    const range = (column: string, op: string, value: number | Date | undefined, cast: string) => {
      if (value === undefined) return;
      where.push(`${alias}.${column} ${op} ${params.add(value instanceof Date ? value.toISOString() : value, cast)}`);
      countable = false;
    };
    range('atoms', '>=', query.atomsMin, 'integer');
    range('atoms', '<=', query.atomsMax, 'integer');
    range('resolution', '>=', query.resolutionMin, 'double precision');
    range('resolution', '<=', query.resolutionMax, 'double precision');
    range('created_at', '>=', query.createdFrom, 'timestamptz');
    range('created_at', '<=', query.createdTo, 'timestamptz');
    const filter = where.join(' and ');
    const countFilter = counted.join(' and ');

    // The tag counts are kept per owner, trash flag and project only: with other filters, tags are counted from the documents.
    const countedFacet = (facet: SearchFacet) => countable && (facet !== 'tag' || countedColumns.every((column) => column === 'project_id'));
    const gather = scopedByIndex || facets.some((f) => !countedFacet(f));
    // ts_rank (field weights and frequency) rather than ts_rank_cd (cover density): a fifth of the cost
    // per matched row, and every match is ranked. Documents matching the words as typed come before
    // those found through typo corrections (AS_TYPED), and as-typed words add to the rank of corrections.
    /** The rank of the row under alias `a`: by the arm it was found by (`arm`), or, with shares, looked up by its owner. */
    const rankExpr = (a: string, arm?: number) => {
      const vector = `${a}.scoped_document`;
      const [loose, strict] = !sharing
        ? ['(select scoped from q)', '(select scoped_strict from q)']
        : arm !== undefined
          ? [`(select r${arm} from q)`, `(select s${arm} from q)`]
          : ['ranked', 'ranked_strict'].map((column) => `((select ${column} from q))[array_position(${ownersOf()}, ${a}.owner_id)]`);
      return `(case when (select ${sharing ? 's0' : 'scoped_strict'} from q) is null then ${AS_TYPED} + 2::real * ts_rank(${vector}, ${loose})
             else (case when ${vector} @@ ${strict} then ${AS_TYPED} else 0 end)
                  + ts_rank(${vector}, ${loose}) + ts_rank(${vector}, ${strict}) end)::float8`;
    };
    const limit = params.add(query.limit + 1, 'integer');

    // The kept counts a search answers from are read once (the total and each facet then sum them):
    // read per facet, each read was an index scan per arm of the visibility condition.
    let keptCounts: string | undefined;
    const kept = () => {
      if (!keptCounts) {
        keptCounts = 'kept';
        ctes.push(`kept as materialized (select c.kind, c.format, c.method, c.documents from search_counts c where ${countFilter})`);
      }
      return keptCounts;
    };
    const keptTotal = () => `(select coalesce(sum(c.documents), 0) from ${kept()} c)`;
    /** A facet's values and counts from the kept counts (search_counts, search_tag_counts). */
    const countedFacetSelect = (facet: SearchFacet) => {
      const counts =
        facet === 'tag'
          ? `select c.tag as value, sum(c.documents) as n from search_tag_counts c where ${countFilter} group by 1`
          : `select c.${COUNTED_FACETS[facet]} as value, sum(c.documents) as n from ${kept()} c
               where c.${COUNTED_FACETS[facet]} <> '' group by 1`;
      return `(select json_object_agg(value, n order by n desc, value) from (
                   select value, n::integer as n from (${counts}) counted where n > 0
                   order by 2 desc, 1 limit ${FACET_VALUES}) f)`;
    };

    let total: string;
    let facetSelects: string[];
    if (gather) {
      const sortKey = sort === 'relevance' ? 'null::text' : spec.expr.replace('d.', `${alias}.`);
      // Only the columns the asked facets count are carried: every matched row is copied into the CTE.
      const facetColumns = facets.map((f) => `${alias}.${f === 'tag' ? 'tags' : f}, `).join('');
      if (byTag) {
        // A document has a row per asked tag it carries: one group each; with every tag asked for, all of them.
        // With shares, one index-only read per arm: the caller's by owner, a shared project's by project.
        const source = sharing
          ? `(${arms.map((arm) => `select * from search_document_tags t where ${[arm.led('t'), ...where.slice(1)].join(' and ')}`).join('\n            union all ')}) t`
          : 'search_document_tags t';
        ctes.push(`matched as materialized (
          select t.structure_id, null::tid as ctid, ${facetColumns}0::float8 as score, ${sortKey} as sort_key
          from ${source} where ${sharing ? 'true' : filter}
          group by t.structure_id, ${facetColumns}${sortKey}
          ${query.tagMode === 'any' ? '' : `having count(*) = ${tags.length}`}
        )`);
      } else {
        // With shares, one read per arm (by its own index entries, ranked by its owner's keys), in one list.
        const select = (
          conditions: string,
          arm?: number,
        ) => `select d.structure_id, d.ctid, ${facetColumns}${sort === 'relevance' ? rankExpr('d', arm) : '0::float8'} as score,
                 ${sortKey} as sort_key
          from search_documents d where ${conditions}`;
        const visible = (arm: (typeof arms)[number]) => (scopedByIndex ? `(${arm.on('d')}) is true` : arm.on('d'));
        ctes.push(`matched as materialized (
          ${
            sharing
              ? arms
                  .map((arm, i) => select([visible(arm), ...armWhere.map((condition) => condition(arm, i)), ...where.slice(1)].join(' and '), i))
                  .join('\n          union all ')
              : select(filter)
          }
        )`);
      }
      const inMemory: SortSpec = { ...spec, expr: sort === 'relevance' ? 'm.score' : 'm.sort_key' };
      const conditions = cursor ? `where ${keyset(inMemory, 'm.structure_id', cursor, params, CASTS[spec.expr])}` : '';
      const order = orderBy(inMemory, 'm.structure_id');
      // The page is cut from the matches before it is numbered: a bounded (top-N) sort, where numbering
      // every match first sorted them all.
      ctes.push(`page as (
        select m.structure_id, m.ctid, m.score, to_json(${inMemory.expr}) as key, row_number() over (order by ${order}) as ord
        from (select * from matched m ${conditions} order by ${order} limit ${limit}) m order by ${order})`);
      total = '(select count(*) from matched)';
      // Two or more of kind, format and method are counted in one pass over the matched rows: a count
      // per combination of their values (a few dozen), each facet then summed from those. One hash
      // lookup a row, where grouping sets took one per facet.
      const columns = facets.filter((f) => f !== 'tag');
      if (columns.length > 1) {
        const list = columns.join(', ');
        ctes.push(`facet_counts as materialized (select ${list}, count(*) as n from matched group by ${list})`);
      }
      facetSelects = facets.map((facet) => {
        // unnest in the select list (ProjectSet) is several times faster than a lateral function scan per row.
        const counts =
          facet !== 'tag' && columns.length > 1
            ? `select ${facet} as value, sum(n)::bigint as n from facet_counts where ${facet} is not null group by 1`
            : `select value, count(*) as n from (select ${facet === 'tag' ? 'unnest(m.tags)' : `m.${facet}`} as value from matched m) v
               where value is not null group by 1`;
        return `(select json_object_agg(value, n order by n desc, value) from (
                   ${counts} order by 2 desc, 1 limit ${FACET_VALUES}) f)`;
      });
    } else if (sharing) {
      // One owner-led, index-ordered walk per arm of the visibility condition, each cut at the page
      // size, then merged: the same index-only walks as an owner's own search, not a sort of every match.
      const conditions = where.slice(1);
      if (cursor) conditions.push(keyset(spec, 'd.structure_id', cursor, params));
      const order = orderBy(spec, 'd.structure_id');
      const walks = arms.map(
        (arm) => `(select d.structure_id, ${spec.expr} as sort_key from ${[arm.listed, ...conditions].join(' and ')}
          order by ${order} limit ${limit})`,
      );
      const merged: SortSpec = { ...spec, expr: 'u.sort_key' };
      const mergedOrder = orderBy(merged, 'u.structure_id');
      ctes.push(`page as (
        select u.structure_id, 0::float8 as score, to_json(u.sort_key) as key, row_number() over (order by ${mergedOrder}) as ord
        from (${walks.join(' union all ')}) u order by ${mergedOrder} limit ${limit})`);
      // A count the kept counts cannot give is made per arm too: each an owner-led index-only count,
      // where one count under the or'ed condition visited every candidate row in the heap.
      const armCounts = arms.map((arm) => `select count(*) as n from ${[arm.counted, ...where.slice(1)].join(' and ')}`);
      total = countable ? keptTotal() : `(select sum(n)::bigint from (${armCounts.join(' union all ')}) per_arm)`;
      facetSelects = facets.map(countedFacetSelect);
    } else {
      const conditions = [filter];
      if (cursor) conditions.push(keyset(spec, 'd.structure_id', cursor, params));
      const order = orderBy(spec, 'd.structure_id');
      ctes.push(`page as (
        select d.structure_id, 0::float8 as score, to_json(${spec.expr}) as key, row_number() over (order by ${order}) as ord
        from search_documents d where ${conditions.join(' and ')} order by ${order} limit ${limit})`);
      total = countable ? keptTotal() : `(select count(*) from search_documents d where ${filter})`;
      facetSelects = facets.map(countedFacetSelect);
    }

    // The header row, then (presented) the page's items in it, or the page's rows: the structures as
    // the API shows them (only the owner's: an index can lag, never leak), or bare ids; with the text
    // highlights are cut from, fetched by the row's ctid (words always gather the matched rows; one
    // statement, so the ctid is stable) rather than by a second walk of the primary key.
    const shown = params.add(query.limit, 'integer');
    const score = hasText && sort !== 'relevance' ? rankExpr('b') : 'p.score';
    const next = `(select json_build_array(p.key, p.structure_id) from page p where p.ord = ${shown} and exists (select from page where ord > ${shown}))`;
    const header = [
      'null::bigint as ord',
      `${total}::text as total`,
      `${next}::text as next`,
      `${hasText ? '(select corrections from q)' : 'null::text[]'} as corrections`,
      ...facetSelects.map((select, i) => `${select}::text as facet_${facets[i]}`),
    ];
    if (present) {
      // One row: the header, with the page's items joined into one JSON text (and their texts, for
      // highlights) in one pass over the page, in a subquery of the header row.
      const highlights = hasText ? `chr(${HIGHLIGHTS_GAP.charCodeAt(0)})` : `'[]'`;
      const joined = `(
        select '[' || string_agg(concat('{"structure":', ${STRUCTURE_CARD_CONCAT_ARGS}, ',"score":', ${score}, ',"highlights":', ${highlights}, '}'),
                                 ',' order by p.ord) || ']' as items,
               ${hasText ? `string_agg(b.body, ${highlights} order by p.ord)` : 'null::text'} as bodies
        from page p
        ${hasText ? 'join search_documents b on b.ctid = p.ctid' : ''}
        join structures cs on cs.id = p.structure_id and ${visibleTo('cs')}
        where p.ord <= ${shown}) shown`;
      return {
        text: `with ${ctes.join(',\n')}\n      select ${header.join(', ')}, shown.items, shown.bodies from ${joined}`,
        values: params.values,
        sort,
        facets,
        words,
      };
    }
    header.push('null::text as item, null::text as score, null::text as body');
    const rows = ['p.ord', 'null', 'null', 'null', ...facets.map(() => 'null'), 'p.structure_id::text', `(${score})::text`, hasText ? 'b.body' : 'null'];
    const text = `with ${ctes.join(',\n')}
      select ${header.join(', ')}
      union all
      (select ${rows.join(', ')}
       from page p
       ${hasText ? 'join search_documents b on b.ctid = p.ctid' : ''}
       where p.ord <= ${shown} order by p.ord)`;
    return { text, values: params.values, sort, facets, words };
  }
}

/** Recounts search_counts and search_tag_counts from the documents (the rebuild's repair of anything the triggers missed). */
export async function recountSearchCounts(em: { execute: (sql: string) => Promise<unknown> }): Promise<void> {
  await em.execute('delete from search_counts');
  await em.execute('delete from search_tag_counts');
  await em.execute(
    `insert into search_counts (owner_id, deleted, kind, format, method, project_id, has_ligand, documents)
     select owner_id, deleted, kind, coalesce(format, ''), coalesce(method, ''), project_id, has_ligand, count(*)
     from search_documents group by 1, 2, 3, 4, 5, 6, 7`,
  );
  await em.execute(
    `insert into search_tag_counts (owner_id, deleted, project_id, tag, documents)
     select owner_id, deleted, project_id, tag, count(*) from search_documents, unnest(tags) as tag group by 1, 2, 3, 4`,
  );
}

export type { SearchFacet };
