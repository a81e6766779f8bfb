import type { MikroORM } from '@mikro-orm/postgresql';
import type { SearchDocument, SearchIndex, SearchQuery, SearchResult } from './types.js';

/** Words of a query as prefix terms: "lyso kinase" → "lyso:* & kinase:*". */
export function toPrefixTsQuery(q: string): string | undefined {
  const words = q
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .slice(0, 16);
  if (words.length === 0) return undefined;
  return words.map((w) => `${w}:*`).join(' & ');
}

const SORTS: Record<NonNullable<SearchQuery['sort']>, string> = {
  relevance: 'score desc, created_at desc, structure_id',
  created: 'created_at asc, structure_id',
  '-created': 'created_at desc, structure_id',
  name: 'lower(name) asc, structure_id',
  atoms: 'atoms asc nulls last, structure_id',
};

/** Postgres full-text search: weighted tsvector + GIN, prefixes through `:*`. */
export class PostgresSearchIndex implements SearchIndex {
  readonly backend = 'postgres' as const;

  constructor(private readonly orm: MikroORM) {}

  private get em() {
    return this.orm.em.fork();
  }

  async upsert(doc: SearchDocument): Promise<void> {
    const strong = [doc.name, doc.pdbId ?? ''].join(' ');
    const medium = [doc.title ?? '', doc.tags.join(' '), doc.filename ?? ''].join(' ');
    const weak = [doc.description, doc.metadataText.join(' '), doc.method ?? '', doc.formula ?? '', doc.ligands.join(' ')].join(' ');
    const body = [strong, medium, weak].join(' ').replace(/\s+/g, ' ').trim();
    await this.em.execute(
      `insert into search_documents
         (structure_id, owner_id, project_id, name, kind, format, tags, method, atoms, resolution, deleted,
          created_at, updated_at, indexed_at, body, document, data)
       values (?, ?, ?, ?, ?, ?, array(select jsonb_array_elements_text(?::jsonb)), ?, ?, ?, ?, ?, ?, now(), ?,
          setweight(to_tsvector('simple', ?), 'A') || setweight(to_tsvector('simple', ?), 'B') || setweight(to_tsvector('simple', ?), 'C'),
          ?::jsonb)
       on conflict (structure_id) do update set
         owner_id = excluded.owner_id, project_id = excluded.project_id, name = excluded.name, kind = excluded.kind,
         format = excluded.format, tags = excluded.tags, method = excluded.method, atoms = excluded.atoms,
         resolution = excluded.resolution, deleted = excluded.deleted, created_at = excluded.created_at,
         updated_at = excluded.updated_at, indexed_at = now(), body = excluded.body, document = excluded.document,
         data = excluded.data`,
      [
        doc.structureId,
        doc.ownerId,
        doc.projectId,
        doc.name,
        doc.kind,
        doc.format ?? null,
        JSON.stringify(doc.tags),
        doc.method ?? null,
        doc.atoms ?? null,
        doc.resolution ?? null,
        doc.deleted,
        doc.createdAt,
        doc.updatedAt,
        body,
        strong,
        medium,
        weak,
        JSON.stringify(doc),
      ],
    );
  }

  async delete(structureId: string): Promise<void> {
    await this.em.execute('delete from search_documents where structure_id = ?', [structureId]);
  }

  async search(query: SearchQuery): Promise<SearchResult> {
    const where: string[] = ['d.owner_id = ?'];
    const params: unknown[] = [query.ownerId];
    const tsquery = query.q ? toPrefixTsQuery(query.q) : undefined;
    if (query.q && !tsquery) return { hits: [], total: 0, facets: {} };
    if (tsquery) where.push('d.document @@ q.query');
    if (!query.includeDeleted) where.push('not d.deleted');
    if (query.tags?.length) {
      where.push('d.tags @> array(select jsonb_array_elements_text(?::jsonb))');
      params.push(JSON.stringify(query.tags));
    }
    if (query.kind) {
      where.push('d.kind = ?');
      params.push(query.kind);
    }
    if (query.format) {
      where.push('d.format = ?');
      params.push(query.format);
    }
    if (query.projectId) {
      where.push('d.project_id = ?');
      params.push(query.projectId);
    }
    if (query.atomsMin !== undefined) {
      where.push('d.atoms >= ?');
      params.push(query.atomsMin);
    }
    if (query.atomsMax !== undefined) {
      where.push('d.atoms <= ?');
      params.push(query.atomsMax);
    }
    if (query.resolutionMax !== undefined) {
      where.push('d.resolution <= ?');
      params.push(query.resolutionMax);
    }
    if (query.method) {
      where.push('d.method ilike ?');
      params.push(`%${query.method.replace(/[%_\\]/g, '\\$&')}%`);
    }
    const from = `search_documents d, (select ${tsquery ? "to_tsquery('simple', ?)" : 'null::tsquery'} as query) q`;
    const fromParams = tsquery ? [tsquery] : [];
    const sort = SORTS[query.sort ?? (tsquery ? 'relevance' : '-created')];
    const rows = await this.em.execute<{ structure_id: string; score: number; total: string; headline: string | null }[]>(
      `select d.structure_id, ${tsquery ? 'ts_rank_cd(d.document, q.query)' : '0'} as score, count(*) over () as total,
              ${tsquery ? "ts_headline('simple', d.body, q.query, 'MaxFragments=2, MaxWords=12, MinWords=3')" : 'null'} as headline
       from ${from}
       where ${where.join(' and ')}
       order by ${sort}
       limit ? offset ?`,
      [...fromParams, ...params, query.limit, query.offset],
    );
    let total = rows.length > 0 ? Number(rows[0].total) : 0;
    if (rows.length === 0 && query.offset > 0) {
      const [count] = await this.em.execute<{ n: string }[]>(`select count(*) as n from ${from} where ${where.join(' and ')}`, [...fromParams, ...params]);
      total = Number(count?.n ?? 0);
    }
    const facets: Record<string, Record<string, number>> = {};
    for (const facet of query.facets ?? []) {
      const column = facet === 'tag' ? 'unnest(d.tags)' : `d.${facet}`;
      const counts = await this.em.execute<{ value: string | null; n: string }[]>(
        `select ${column} as value, count(*) as n from ${from} where ${where.join(' and ')} group by 1 order by 2 desc, 1 limit 100`,
        [...fromParams, ...params],
      );
      facets[facet] = Object.fromEntries(counts.filter((c) => c.value !== null).map((c) => [c.value as string, Number(c.n)]));
    }
    return {
      total,
      facets,
      hits: rows.map((r) => ({
        structureId: r.structure_id,
        score: Number(r.score),
        highlights: r.headline ? [r.headline] : [],
      })),
    };
  }
}
