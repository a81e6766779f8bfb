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
  metadataText: string[];
  title?: string;
  method?: string;
  resolution?: number;
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

export interface SearchQuery {
  ownerId: string;
  q?: string;
  tags?: string[];
  kind?: StructureKind;
  format?: string;
  projectId?: string;
  atomsMin?: number;
  atomsMax?: number;
  resolutionMax?: number;
  method?: string;
  includeDeleted?: boolean;
  sort?: 'relevance' | 'created' | '-created' | 'name' | 'atoms';
  facets?: ('tag' | 'kind' | 'format' | 'method')[];
  limit: number;
  offset: number;
}

export interface SearchHit {
  structureId: string;
  score: number;
  highlights: string[];
}

export interface SearchResult {
  hits: SearchHit[];
  total: number;
  facets: Record<string, Record<string, number>>;
}

/** One interface for both backends; only the index job writes. */
export interface SearchIndex {
  readonly backend: 'postgres' | 'typesense';
  upsert(document: SearchDocument): Promise<void>;
  delete(structureId: string): Promise<void>;
  search(query: SearchQuery): Promise<SearchResult>;
}
