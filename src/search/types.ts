import type { StructureKind } from '../entities/Structure.js';

/** The denormalised document the index keeps per structure (its current version). */
export interface SearchDocument {
  structureId: string;
  ownerId: string;
  projectId: string;
  name: string;
  description: string;
  kind: StructureKind;
  format?: string;
  tags: string[];
  /** Metadata values flattened to text (keys dropped, nested objects and arrays walked). */
  metadataText: string[];
  title?: string;
  /** Experimental method, upper-cased as the PDB writes it ("X-RAY DIFFRACTION"). */
  method?: string;
  resolution?: number;
  organism?: string;
  pdbId?: string;
  formula?: string;
  ligands: string[];
  filename?: string;
  atoms?: number;
  residues?: number;
  chains?: number;
  deleted: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export const SEARCH_SORTS = [
  'relevance',
  'created',
  '-created',
  'updated',
  '-updated',
  'name',
  '-name',
  'atoms',
  '-atoms',
  'resolution',
  '-resolution',
] as const;
export type SearchSort = (typeof SEARCH_SORTS)[number];

export const SEARCH_FACETS = ['tag', 'kind', 'format', 'method'] as const;
export type SearchFacet = (typeof SEARCH_FACETS)[number];

export interface SearchQuery {
  /** The caller: every document they own of record matches, unless `ownAll` is false. */
  ownerId: string;
  /** False: only `shared` matches (a token limited to projects, or `scope=shared`). Default true. */
  ownAll?: boolean;
  /** Projects of other owners (or, with `ownAll` false, any owner) that match too, grouped by owner of record. */
  shared?: readonly { ownerId: string; projectIds: readonly string[] }[];
  q?: string;
  tags?: string[];
  /** `all` (default): every tag must be present; `any`: at least one. */
  tagMode?: 'all' | 'any';
  kind?: StructureKind;
  format?: string;
  projectId?: string;
  atomsMin?: number;
  atomsMax?: number;
  resolutionMin?: number;
  resolutionMax?: number;
  /** Exact method, case-insensitive ("x-ray diffraction"). */
  method?: string;
  createdFrom?: Date;
  createdTo?: Date;
  hasLigand?: boolean;
  /** `exclude` (default) hides the trash, `include` shows it too, `only` shows nothing else. */
  trash?: 'exclude' | 'include' | 'only';
  /** Default: `relevance` with q, `-created` without. */
  sort?: SearchSort;
  facets?: readonly SearchFacet[];
  limit: number;
  /** Opaque, issued by the same backend in `nextCursor`. */
  cursor?: string;
}

export interface SearchHit {
  structureId: string;
  score: number;
  highlights: string[];
}

export interface SearchResult {
  hits: SearchHit[];
  total: number;
  facets: Partial<Record<SearchFacet, Record<string, number>>>;
  nextCursor: string | null;
}

/** A page of hits presented as the API shows them, as JSON text built where the documents are. */
export interface PresentedSearchPage {
  /**
   * JSON array of `{structure, score, highlights}`, in order, as pieces of text that joined make the
   * array (kept apart, to be encoded into the response piece by piece: utf8Bytes in lib/bytes.ts);
   * structures the caller may not (or no longer) see are left out.
   */
  itemsJson: readonly string[];
  total: number;
  facets: SearchResult['facets'];
  nextCursor: string | null;
}

/** A cursor that this backend did not issue, or one issued for another query's sort. */
export class InvalidCursorError extends Error {
  constructor() {
    super('The cursor is not one this server issued for this sort; start again without it.');
    this.name = 'InvalidCursorError';
  }
}

export interface RebuildProgress {
  done: number;
  total: number;
}

/** One interface for both backends; only the index job (and `molvault reindex`) writes. */
export interface SearchIndex {
  readonly backend: 'postgres' | 'typesense';
  /** Creates what the backend needs (collection, alias); safe to call on every start. */
  prepare(): Promise<void>;
  upsert(document: SearchDocument): Promise<void>;
  /** Batched upsert, for reindexing. */
  upsertMany(documents: SearchDocument[]): Promise<void>;
  delete(structureId: string): Promise<void>;
  search(query: SearchQuery): Promise<SearchResult>;
  /**
   * Optional: searches and presents the page in one step (the Postgres backend builds the structures'
   * JSON in the search's own statement). Without it, the API presents `search`'s hits itself.
   */
  searchPresented?(query: SearchQuery): Promise<PresentedSearchPage>;
  /** The stored documents for these ids (missing ids are absent from the map), to detect drift. */
  get(structureIds: string[]): Promise<Map<string, SearchDocument>>;
  /** Documents in the index, trashed ones included. */
  count(): Promise<number>;
  /** Every structure id in the index, in batches. */
  ids(): AsyncIterable<string[]>;
  /**
   * Rebuilds the whole index from `batches` (every structure, in batches) without a moment in which
   * searches see an empty or half-built index. Writes made while it runs are the caller's to replay.
   */
  rebuild(batches: AsyncIterable<SearchDocument[]>, total: number, onProgress?: (progress: RebuildProgress) => void): Promise<void>;
  /** True when the stored schema is older than this code's (Typesense); a rebuild fixes it. */
  needsRebuild(): Promise<boolean>;
  close(): Promise<void>;
}
