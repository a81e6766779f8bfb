import { Client, Errors } from 'typesense';
import type { CollectionFieldSchema } from 'typesense/lib/Typesense/Collection.js';
import type { SearchParams } from 'typesense/lib/Typesense/Documents.js';
import type { StructureKind } from '../entities/Structure.js';
import type { Logger } from '../lib/logger.js';
import { highlighter } from './highlight.js';
import { decodeSearchCursor, effectiveSort, encodeSearchCursor, queryWords, TYPO_ONE_FROM, TYPO_TWO_FROM } from './query.js';
import { searchText, tokenText } from './text.js';
import type { RebuildProgress, SearchDocument, SearchFacet, SearchIndex, SearchQuery, SearchResult, SearchSort } from './types.js';

/**
 * Bump when the fields below change: workers then see the alias pointing at an older collection
 * (needsRebuild), rebuild into a new one and swap the alias, so searches never stop.
 */
export const TYPESENSE_SCHEMA_VERSION = 2;
/** Typesense answers at most 250 hits per request. */
const MAX_PAGE = 250;
const IMPORT_BATCH = 500;
const FACET_VALUES = 100;

interface TypesenseDocument {
  id: string;
  owner_id: string;
  project_id: string;
  name: string;
  name_sort: string;
  description: string;
  kind: string;
  format?: string;
  tags: string[];
  metadata_text: string[];
  title?: string;
  method?: string;
  resolution?: number;
  organism?: string;
  pdb_id?: string;
  formula?: string;
  ligands: string[];
  filename?: string;
  atoms?: number;
  residues?: number;
  chains?: number;
  has_ligand: boolean;
  deleted: boolean;
  created_at: number;
  updated_at: number;
  /** The index tokens (indexTokens) of the A, B and C texts (searchText), and of all three. */
  words_a: string;
  words_b: string;
  words_c: string;
  words_all: string;
}

/** Kept whole in the index (symbols_to_index), as the compounds of the words fields hold them: "1hpv.pdb". */
const COMPOUND_SYMBOLS = ['.', '_', '-'];

const FIELDS: CollectionFieldSchema[] = [
  { name: 'owner_id', type: 'string' },
  { name: 'project_id', type: 'string' },
  { name: 'name', type: 'string' },
  { name: 'name_sort', type: 'string', sort: true, index: true },
  { name: 'description', type: 'string' },
  { name: 'kind', type: 'string', facet: true },
  { name: 'format', type: 'string', facet: true, optional: true },
  { name: 'tags', type: 'string[]', facet: true },
  { name: 'metadata_text', type: 'string[]' },
  { name: 'title', type: 'string', optional: true },
  { name: 'method', type: 'string', facet: true, optional: true },
  { name: 'resolution', type: 'float', optional: true, sort: true },
  { name: 'organism', type: 'string', optional: true },
  { name: 'pdb_id', type: 'string', optional: true },
  { name: 'formula', type: 'string', optional: true },
  { name: 'ligands', type: 'string[]' },
  { name: 'filename', type: 'string', optional: true },
  { name: 'atoms', type: 'int32', optional: true, sort: true },
  { name: 'residues', type: 'int32', optional: true },
  { name: 'chains', type: 'int32', optional: true },
  { name: 'has_ligand', type: 'bool' },
  { name: 'deleted', type: 'bool' },
  { name: 'created_at', type: 'int64', sort: true },
  { name: 'updated_at', type: 'int64', sort: true },
  { name: 'words_a', type: 'string' },
  { name: 'words_b', type: 'string' },
  { name: 'words_c', type: 'string' },
  { name: 'words_all', type: 'string' },
];

/**
 * The Postgres backend's texts and weights: A (name and PDB id), then B (title, tags, file name,
 * ligands), then C, each as the tokens both backends index; and all of them in one field, so a query
 * whose words are spread over several texts matches as it does in Postgres.
 */
const QUERY_BY = ['words_a', 'words_b', 'words_c', 'words_all'];
const QUERY_WEIGHTS = [4, 2, 1, 1];

const SORT_BY: Record<SearchSort, string> = {
  relevance: '_text_match:desc,created_at:desc',
  created: 'created_at:asc',
  '-created': 'created_at:desc',
  updated: 'updated_at:asc',
  '-updated': 'updated_at:desc',
  name: 'name_sort:asc,created_at:asc',
  '-name': 'name_sort:desc,created_at:desc',
  atoms: 'atoms(missing_values: last):asc,created_at:asc',
  '-atoms': 'atoms(missing_values: last):desc,created_at:desc',
  resolution: 'resolution(missing_values: last):asc,created_at:asc',
  '-resolution': 'resolution(missing_values: last):desc,created_at:desc',
};

const FACET_FIELDS: Record<SearchFacet, keyof TypesenseDocument> = { tag: 'tags', kind: 'kind', format: 'format', method: 'method' };

/** A filter value in backticks; Typesense has no escape for a backtick inside one, so it is dropped. */
const quote = (value: string) => `\`${value.replace(/`/g, '')}\``;

function toTypesense(doc: SearchDocument): TypesenseDocument {
  const text = searchText(doc);
  return {
    words_a: tokenText(text.strong),
    words_b: tokenText(text.medium),
    words_c: tokenText(text.weak),
    words_all: tokenText(text.body),
    id: doc.structureId,
    owner_id: doc.ownerId,
    project_id: doc.projectId,
    name: doc.name,
    name_sort: doc.name.toLowerCase(),
    description: doc.description,
    kind: doc.kind,
    format: doc.format,
    tags: doc.tags,
    metadata_text: doc.metadataText,
    title: doc.title,
    method: doc.method,
    resolution: doc.resolution,
    organism: doc.organism,
    pdb_id: doc.pdbId,
    formula: doc.formula,
    ligands: doc.ligands,
    filename: doc.filename,
    atoms: doc.atoms,
    residues: doc.residues,
    chains: doc.chains,
    has_ligand: doc.ligands.length > 0,
    deleted: doc.deleted,
    created_at: new Date(doc.createdAt).getTime(),
    updated_at: new Date(doc.updatedAt).getTime(),
  };
}

function fromTypesense(doc: TypesenseDocument): SearchDocument {
  return {
    structureId: doc.id,
    ownerId: doc.owner_id,
    projectId: doc.project_id,
    name: doc.name,
    description: doc.description,
    kind: doc.kind as StructureKind,
    format: doc.format,
    tags: doc.tags ?? [],
    metadataText: doc.metadata_text ?? [],
    title: doc.title,
    method: doc.method,
    resolution: doc.resolution,
    organism: doc.organism,
    pdbId: doc.pdb_id,
    formula: doc.formula,
    ligands: doc.ligands ?? [],
    filename: doc.filename,
    atoms: doc.atoms,
    residues: doc.residues,
    chains: doc.chains,
    deleted: doc.deleted,
    createdAt: new Date(doc.created_at),
    updatedAt: new Date(doc.updated_at),
  };
}

/** The Postgres backend's highlight of a hit: its text, with the words as typed and the tokens they matched marked. */
function highlightsOf(doc: TypesenseDocument, words: string[], matched: string[]): string[] {
  if (words.length === 0) return [];
  const shown = highlighter(words, matched)(searchText(fromTypesense(doc)).body);
  return shown ? [shown] : [];
}

/** Who may see: the caller's own documents, or'ed with each sharing owner's documents in the shared projects. */
function visibilityFilter(query: SearchQuery): string {
  const arms = [
    ...((query.ownAll ?? true) ? [`owner_id:=${quote(query.ownerId)}`] : []),
    ...(query.shared ?? [])
      .filter((group) => group.projectIds.length > 0)
      .map((group) => `(owner_id:=${quote(group.ownerId)} && project_id:=[${group.projectIds.map(quote).join(',')}])`),
  ];
  // Nothing visible: a condition no document meets.
  if (arms.length === 0) return 'owner_id:=`none`';
  return arms.length === 1 ? arms[0] : `(${arms.join(' || ')})`;
}

/** Typesense's filter_by for a query: always who may see, then each filter given. */
export function typesenseFilter(query: SearchQuery): string {
  const parts = [visibilityFilter(query)];
  const trash = query.trash ?? 'exclude';
  if (trash !== 'include') parts.push(`deleted:=${trash === 'only'}`);
  if (query.tags?.length) {
    if (query.tagMode === 'any') parts.push(`tags:=[${query.tags.map(quote).join(',')}]`);
    else for (const tag of query.tags) parts.push(`tags:=[${quote(tag)}]`);
  }
  if (query.kind) parts.push(`kind:=${quote(query.kind)}`);
  if (query.format) parts.push(`format:=${quote(query.format)}`);
  if (query.projectId) parts.push(`project_id:=${quote(query.projectId)}`);
  if (query.method) parts.push(`method:=${quote(query.method.trim().toUpperCase())}`);
  if (query.hasLigand !== undefined) parts.push(`has_ligand:=${query.hasLigand}`);
  if (query.atomsMin !== undefined) parts.push(`atoms:>=${query.atomsMin}`);
  if (query.atomsMax !== undefined) parts.push(`atoms:<=${query.atomsMax}`);
  if (query.resolutionMin !== undefined) parts.push(`resolution:>=${query.resolutionMin}`);
  if (query.resolutionMax !== undefined) parts.push(`resolution:<=${query.resolutionMax}`);
  if (query.createdFrom) parts.push(`created_at:>=${query.createdFrom.getTime()}`);
  if (query.createdTo) parts.push(`created_at:<=${query.createdTo.getTime()}`);
  return parts.join(' && ');
}

export interface TypesenseOptions {
  url: string;
  apiKey: string;
  /** The alias searches go through; collections are named `<alias>_v<schema>_<time>`. */
  alias: string;
  log?: Logger;
}

/**
 * Typesense behind the SearchIndex interface. Reads and writes go through an alias; a rebuild fills
 * a new versioned collection and swaps the alias, then drops the old collection. Cursors are opaque
 * offsets (Typesense pages by offset); a row added or removed between pages can shift by one.
 */
export class TypesenseSearchIndex implements SearchIndex {
  readonly backend = 'typesense' as const;
  private readonly client: Client;

  constructor(private readonly options: TypesenseOptions) {
    const url = new URL(options.url);
    const protocol = url.protocol.replace(':', '');
    this.client = new Client({
      nodes: [{ host: url.hostname, port: Number(url.port || (protocol === 'https' ? 443 : 80)), protocol, path: url.pathname.replace(/\/$/, '') }],
      apiKey: options.apiKey,
      connectionTimeoutSeconds: 10,
      numRetries: 3,
      logLevel: 'warn',
    });
  }

  private get alias() {
    return this.options.alias;
  }

  private documents() {
    return this.client.collections<TypesenseDocument>(this.alias).documents();
  }

  /** The collection the alias points at, or undefined when there is none yet. */
  private async currentCollection(): Promise<string | undefined> {
    try {
      return (await this.client.aliases(this.alias).retrieve()).collection_name;
    } catch (error) {
      if (error instanceof Errors.ObjectNotFound) return undefined;
      throw error;
    }
  }

  private async createCollection(): Promise<string> {
    const name = `${this.alias}_v${TYPESENSE_SCHEMA_VERSION}_${Date.now()}`;
    await this.client.collections().create({ name, fields: FIELDS, default_sorting_field: 'created_at', symbols_to_index: COMPOUND_SYMBOLS });
    return name;
  }

  async prepare(): Promise<void> {
    if (await this.currentCollection()) return;
    const name = await this.createCollection();
    await this.client.aliases().upsert(this.alias, { collection_name: name });
    this.options.log?.info({ alias: this.alias, collection: name }, 'created the Typesense collection');
  }

  async needsRebuild(): Promise<boolean> {
    const current = await this.currentCollection();
    return !current || !current.startsWith(`${this.alias}_v${TYPESENSE_SCHEMA_VERSION}_`);
  }

  async close(): Promise<void> {}

  async upsert(document: SearchDocument): Promise<void> {
    await this.documents().upsert(toTypesense(document));
  }

  async upsertMany(documents: SearchDocument[], collection = this.alias): Promise<void> {
    for (let i = 0; i < documents.length; i += IMPORT_BATCH) {
      const batch = documents.slice(i, i + IMPORT_BATCH).map(toTypesense);
      try {
        await this.client.collections<TypesenseDocument>(collection).documents().import(batch, { action: 'upsert' });
      } catch (error) {
        if (error instanceof Errors.ImportError) {
          const failed = error.importResults.filter((r) => !r.success);
          throw new Error(`Typesense refused ${failed.length} of ${batch.length} documents: ${JSON.stringify(failed.slice(0, 3))}`);
        }
        throw error;
      }
    }
  }

  async delete(structureId: string): Promise<void> {
    try {
      await this.client.collections(this.alias).documents(structureId).delete();
    } catch (error) {
      if (!(error instanceof Errors.ObjectNotFound)) throw error;
    }
  }

  async get(structureIds: string[]): Promise<Map<string, SearchDocument>> {
    const found = new Map<string, SearchDocument>();
    for (let i = 0; i < structureIds.length; i += MAX_PAGE) {
      const ids = structureIds.slice(i, i + MAX_PAGE);
      const result = await this.documents().search({ q: '*', filter_by: `id:[${ids.map(quote).join(',')}]`, per_page: ids.length });
      for (const hit of result.hits ?? []) found.set(hit.document.id, fromTypesense(hit.document));
    }
    return found;
  }

  async count(): Promise<number> {
    return (await this.client.collections(this.alias).retrieve()).num_documents;
  }

  async *ids(): AsyncIterable<string[]> {
    const lines = (await this.documents().export({ include_fields: 'id' })).split('\n').filter(Boolean);
    for (let i = 0; i < lines.length; i += 5000) yield lines.slice(i, i + 5000).map((line) => (JSON.parse(line) as { id: string }).id);
  }

  async rebuild(batches: AsyncIterable<SearchDocument[]>, total: number, onProgress?: (progress: RebuildProgress) => void): Promise<void> {
    const previous = await this.currentCollection();
    const next = await this.createCollection();
    let done = 0;
    onProgress?.({ done, total });
    try {
      for await (const batch of batches) {
        await this.upsertMany(batch, next);
        done += batch.length;
        onProgress?.({ done, total });
      }
    } catch (error) {
      await this.client
        .collections(next)
        .delete()
        .catch(() => {});
      throw error;
    }
    await this.client.aliases().upsert(this.alias, { collection_name: next });
    if (previous && previous !== next) await this.client.collections(previous).delete();
    this.options.log?.info({ alias: this.alias, collection: next, previous, documents: done }, 'swapped the Typesense alias to the rebuilt collection');
  }

  async search(query: SearchQuery): Promise<SearchResult> {
    const words = queryWords(query.q);
    if (query.q?.trim() && words.length === 0) return { hits: [], total: 0, facets: {}, nextCursor: null };
    const sort = effectiveSort(query);
    const offset = decodeSearchCursor(query.cursor, sort, (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0) ?? 0;
    const limit = Math.min(query.limit, MAX_PAGE);
    const facets = [...new Set(query.facets ?? [])];
    const params: SearchParams<TypesenseDocument> = {
      q: words.length ? words.join(' ') : '*',
      query_by: QUERY_BY.join(','),
      query_by_weights: QUERY_WEIGHTS.join(','),
      filter_by: typesenseFilter(query),
      sort_by: SORT_BY[sort],
      // Every word must match (as the Postgres backend's AND), each as a prefix or within its typos
      // (typosAllowed: Damerau–Levenshtein 1 from 4 letters, 2 from 8); fewer typos rank first.
      prefix: true,
      num_typos: 2,
      min_len_1typo: TYPO_ONE_FROM,
      min_len_2typo: TYPO_TWO_FROM,
      drop_tokens_threshold: 0,
      typo_tokens_threshold: limit + offset + 1,
      offset,
      limit,
      // Highlights are cut here from the document's text, as the Postgres backend cuts them, around
      // the words typed and the tokens Typesense matched them to.
      highlight_fields: 'words_all',
      ...(facets.length ? { facet_by: facets.map((f) => FACET_FIELDS[f]).join(','), max_facet_values: FACET_VALUES } : {}),
    };
    const result = await this.documents().search(params);
    const hits = result.hits ?? [];
    const facetCounts: SearchResult['facets'] = {};
    for (const facet of facets) {
      const counts = result.facet_counts?.find((c) => c.field_name === FACET_FIELDS[facet]);
      facetCounts[facet] = Object.fromEntries((counts?.counts ?? []).map((c) => [c.value, c.count]));
    }
    const next = offset + hits.length;
    return {
      total: result.found,
      facets: facetCounts,
      hits: hits.map((hit) => ({
        structureId: hit.document.id,
        score: words.length ? hit.text_match : 0,
        highlights: highlightsOf(
          hit.document,
          words,
          (hit.highlights ?? []).flatMap((h) => ((h.matched_tokens ?? []) as (string | string[])[]).flat()),
        ),
      })),
      nextCursor: hits.length > 0 && next < result.found ? encodeSearchCursor(sort, next) : null,
    };
  }
}
