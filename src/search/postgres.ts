import type { MikroORM } from '@mikro-orm/postgresql';
import { decodeSearchCursor, effectiveSort, encodeSearchCursor, queryWords } from './query.js';
import type { RebuildProgress, SearchDocument, SearchFacet, SearchIndex, SearchQuery, SearchResult, SearchSort } from './types.js';

/** A word this long or longer may be a typo of a vocabulary term. */
const TYPO_MIN_LENGTH = 4;
/** How alike (pg_trgm similarity) a vocabulary term must be to count as the word mistyped. */
const TYPO_SIMILARITY = 0.45;
const TYPO_ALTERNATIVES = 4;
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

type Cursor = [value: string | number | null, id: string];
const isCursor = (v: unknown): v is Cursor =>
  Array.isArray(v) && v.length === 2 && (v[0] === null || typeof v[0] === 'string' || typeof v[0] === 'number') && typeof v[1] === 'string';

function orderBy(spec: SortSpec, id: string): string {
  const nulls = spec.nullable ? ' nulls last' : '';
  return `${spec.expr} ${spec.direction}${nulls}, ${id} ${spec.direction}`;
}

/** Rows strictly after the cursor in the order of `spec` (nulls last, id breaking ties in the same direction). */
function keyset(spec: SortSpec, id: string, cursor: Cursor, params: unknown[]): string {
  const [value, lastId] = cursor;
  const beyond = spec.direction === 'asc' ? '>' : '<';
  if (value === null) {
    params.push(lastId);
    return `(${spec.expr} is null and ${id} ${beyond} ?::uuid)`;
  }
  const cast = CASTS[spec.expr];
  params.push(value, value, lastId);
  return `(${spec.expr} ${beyond} ?::${cast} or (${spec.expr} = ?::${cast} and ${id} ${beyond} ?::uuid)${spec.nullable ? ` or ${spec.expr} is null` : ''})`;
}

/** The text a document is found by, in three weights: A (name, PDB id), B (title, tags, file name, ligands), C (the rest). */
function weightedText(doc: SearchDocument) {
  const strong = [doc.name, doc.pdbId ?? ''].join(' ');
  const medium = [doc.title ?? '', doc.tags.join(' '), doc.filename ?? '', doc.ligands.join(' ')].join(' ');
  const weak = [doc.description, doc.metadataText.join(' '), doc.method ?? '', doc.formula ?? '', doc.organism ?? ''].join(' ');
  const body = [strong, medium, weak].join(' ').replace(/\s+/g, ' ').trim();
  return { strong, medium, weak, body };
}

const COLUMNS = [
  'structure_id',
  'owner_id',
  'project_id',
  'name',
  'kind',
  'format',
  'tags',
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
  'document',
  'data',
] as const;

/** Postgres full-text search: weighted tsvector + GIN, prefixes through `:*`, typos through a per-owner trigram vocabulary. */
export class PostgresSearchIndex implements SearchIndex {
  readonly backend = 'postgres' as const;

  constructor(private readonly orm: MikroORM) {}

  private get connection() {
    return this.orm.em.getConnection();
  }

  async prepare(): Promise<void> {}

  async needsRebuild(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {}

  async upsert(doc: SearchDocument): Promise<void> {
    await this.upsertMany([doc]);
  }

  /** One statement: rows from a JSON array, the tsvector built in SQL, new words added to the owner's vocabulary. */
  async upsertMany(docs: SearchDocument[]): Promise<void> {
    if (docs.length === 0) return;
    const rows = docs.map((doc) => {
      const { strong, medium, weak, body } = weightedText(doc);
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
        strong,
        medium,
        weak,
        data: doc,
      };
    });
    const updates = COLUMNS.filter((c) => c !== 'structure_id')
      .map((c) => `${c} = excluded.${c}`)
      .join(', ');
    await this.connection.execute(
      `with input as (
         select * from jsonb_to_recordset(?::jsonb) as r(
           structure_id uuid, owner_id uuid, project_id uuid, name text, kind text, format text, tags text[], method text,
           atoms integer, residues integer, chains integer, resolution double precision, has_ligand boolean, deleted boolean,
           created_at timestamptz, updated_at timestamptz, body text, strong text, medium text, weak text, data jsonb)
       ),
       written as (
         insert into search_documents (${COLUMNS.join(', ')}, indexed_at)
         select structure_id, owner_id, project_id, name, kind, format, coalesce(tags, '{}'), method, atoms, residues, chains,
                resolution, has_ligand, deleted, created_at, updated_at, body,
                setweight(to_tsvector('simple', strong), 'A') || setweight(to_tsvector('simple', medium), 'B') || setweight(to_tsvector('simple', weak), 'C'),
                data, now()
         from input
         on conflict (structure_id) do update set ${updates}, indexed_at = now()
         returning owner_id, document
       )
       insert into search_terms (owner_id, term)
       select distinct w.owner_id, t.lexeme from written w, unnest(w.document) t
       where length(t.lexeme) between ${TYPO_MIN_LENGTH} and 40 and t.lexeme ~ '[[:alpha:]]'
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
   * are gone) and rebuilds the vocabulary in one transaction. Searches keep working throughout.
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
      await tx.execute(
        `insert into search_terms (owner_id, term)
         select distinct d.owner_id, t.lexeme from search_documents d, unnest(d.document) t
         where length(t.lexeme) between ${TYPO_MIN_LENGTH} and 40 and t.lexeme ~ '[[:alpha:]]'
         on conflict do nothing`,
      );
    });
  }

  /**
   * One round trip: the typo-expanded tsquery, the total, the facets and the page come back as one
   * row. The page walks the sort's (owner, key, id) index from the keyset cursor; count and facets
   * aggregate the matched rows once.
   */
  async search(query: SearchQuery): Promise<SearchResult> {
    const words = queryWords(query.q);
    if (query.q?.trim() && words.length === 0) return { hits: [], total: 0, facets: {}, nextCursor: null };
    const sort = effectiveSort(query);
    const spec = sort === 'relevance' ? RELEVANCE : SORT_SPECS[sort];
    const cursor = decodeSearchCursor(query.cursor, sort, isCursor);
    const params: unknown[] = [];
    const ctes: string[] = [];
    const hasText = words.length > 0;

    if (hasText) {
      // Each word matches as a prefix, or as one of the owner's vocabulary terms it is a likely typo of.
      params.push(`{${words.map((w) => `"${w}"`).join(',')}}`, query.ownerId);
      ctes.push(`words as (select w, ord from unnest(?::text[]) with ordinality as u(w, ord))`);
      ctes.push(`q as (
        select to_tsquery('simple', string_agg('(' || alternatives || ')', ' & ' order by ord)) as query,
               to_tsquery('simple', string_agg(quote_literal(w) || ':*', ' & ' order by ord)) as strict
        from (
          select ord, w, array_to_string(array[quote_literal(w) || ':*'] || array(
            select quote_literal(t.term) from search_terms t
            where t.owner_id = ?::uuid and length(w) >= ${TYPO_MIN_LENGTH} and t.term % w and t.term <> w
              and similarity(t.term, w) >= ${TYPO_SIMILARITY}
            order by similarity(t.term, w) desc, t.term limit ${TYPO_ALTERNATIVES}), ' | ') as alternatives
          from words
        ) expanded
      )`);
    }

    const where: string[] = ['d.owner_id = ?::uuid'];
    const whereParams: unknown[] = [query.ownerId];
    if (hasText) where.push('d.document @@ q.query');
    const trash = query.trash ?? 'exclude';
    if (trash === 'exclude') where.push('not d.deleted');
    if (trash === 'only') where.push('d.deleted');
    if (query.tags?.length) {
      where.push(query.tagMode === 'any' ? 'd.tags && ?::text[]' : 'd.tags @> ?::text[]');
      whereParams.push(toPgArray(query.tags));
    }
    const equal = (column: string, value: unknown) => {
      where.push(`${column} = ?`);
      whereParams.push(value);
    };
    if (query.kind) equal('d.kind', query.kind);
    if (query.format) equal('d.format', query.format);
    if (query.projectId) equal('d.project_id', query.projectId);
    if (query.method) equal('d.method', query.method.trim().toUpperCase());
    if (query.hasLigand !== undefined) equal('d.has_ligand', query.hasLigand);
    const range = (column: string, op: string, value: unknown, cast: string) => {
      if (value === undefined) return;
      where.push(`${column} ${op} ?::${cast}`);
      whereParams.push(value instanceof Date ? value.toISOString() : value);
    };
    range('d.atoms', '>=', query.atomsMin, 'integer');
    range('d.atoms', '<=', query.atomsMax, 'integer');
    range('d.resolution', '>=', query.resolutionMin, 'double precision');
    range('d.resolution', '<=', query.resolutionMax, 'double precision');
    range('d.created_at', '>=', query.createdFrom, 'timestamptz');
    range('d.created_at', '<=', query.createdTo, 'timestamptz');

    const from = `search_documents d${hasText ? ', q' : ''}`;
    const score = hasText ? '(ts_rank_cd(d.document, q.query) + ts_rank_cd(d.document, q.strict))::float8' : '0::float8';
    const facets = [...new Set(query.facets ?? [])];
    const needRows = facets.length > 0 || sort === 'relevance';

    // The matched set, materialised once when facets or the relevance order need its rows.
    if (needRows) {
      params.push(...whereParams);
      ctes.push(`matched as materialized (
        select d.structure_id, d.tags, d.kind, d.format, d.method, ${score} as score
        from ${from} where ${where.join(' and ')}
      )`);
    }

    let page: string;
    const pageParams: unknown[] = [];
    if (sort === 'relevance') {
      const conditions = cursor ? `where ${keyset(RELEVANCE, 'm.structure_id', cursor, pageParams)}` : '';
      const order = orderBy(RELEVANCE, 'm.structure_id');
      page = `select m.structure_id, m.score, to_json(m.score) as key, row_number() over (order by ${order}) as ord
              from matched m ${conditions} order by ${order} limit ?`;
    } else {
      pageParams.push(...whereParams);
      const conditions = [...where];
      if (cursor) conditions.push(keyset(spec, 'd.structure_id', cursor, pageParams));
      const order = orderBy(spec, 'd.structure_id');
      page = `select d.structure_id, ${score} as score, to_json(${spec.expr}) as key, row_number() over (order by ${order}) as ord
              from ${from} where ${conditions.join(' and ')} order by ${order} limit ?`;
    }
    pageParams.push(query.limit + 1);
    ctes.push(`page as (${page})`);
    params.push(...pageParams);

    const totalParams: unknown[] = [];
    const total = needRows ? '(select count(*) from matched)' : `(select count(*) from ${from} where ${where.join(' and ')})`;
    if (!needRows) totalParams.push(...whereParams);

    const facetSelects = facets.map((facet) => {
      const values = facet === 'tag' ? 'matched m, unnest(m.tags) as v(value)' : `(select m.${facet} as value from matched m) v`;
      return `(select coalesce(json_object_agg(value, n order by n desc, value), '{}') from (
                 select value, count(*) as n from ${values} where value is not null group by 1
                 order by 2 desc, 1 limit ${FACET_VALUES}) f) as facet_${facet}`;
    });
    const headline = hasText
      ? `ts_headline('simple', b.body, q.query, 'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=14, MinWords=4, FragmentDelimiter=" … "')`
      : 'null';
    const sql = `with ${ctes.join(',\n')}
      select ${total} as total,
        (select coalesce(json_agg(json_build_object('id', p.structure_id, 'score', p.score, 'key', p.key, 'headline', ${headline})
                  order by p.ord), '[]')
           from page p
           join search_documents b on b.structure_id = p.structure_id${hasText ? ', q' : ''}) as hits
        ${facetSelects.length ? `, ${facetSelects.join(', ')}` : ''}`;
    const [row] = await this.connection.execute<Record<string, unknown>[]>(sql, [...params, ...totalParams]);
    const hits = (row.hits as { id: string; score: number; key: string | number | null; headline: string | null }[]) ?? [];
    const more = hits.length > query.limit;
    const shown = hits.slice(0, query.limit);
    const last = shown[shown.length - 1];
    return {
      total: Number(row.total),
      facets: Object.fromEntries(facets.map((f) => [f, (row[`facet_${f}`] as Record<string, number>) ?? {}])) as SearchResult['facets'],
      hits: shown.map((h) => ({ structureId: h.id, score: Number(h.score), highlights: h.headline ? [h.headline] : [] })),
      nextCursor: more && last ? encodeSearchCursor(sort, [last.key, last.id]) : null,
    };
  }
}

/** A text[] literal; every element quoted, so commas and braces in tags are safe. */
export function toPgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

export type { SearchFacet };
