import { Migration } from '@mikro-orm/migrations';

/**
 * Measured at 100,000 documents: counting and faceting one owner's documents read thousands of
 * wide heap rows, and the typo lookup scanned the owner's whole vocabulary. Now:
 *  - a covering index per (owner, trash flag) holding every filter and facet column, so counts and
 *    facets without words are index-only scans;
 *  - GIN indexes led by the owner (btree_gin), so words and typo candidates are found for one owner
 *    in one index scan instead of intersecting with an owner bitmap.
 */
export class Migration20261122224248_search_covering extends Migration {
  override name = 'Migration20261122224248_search_covering';

  override up(): void {
    this.addSql('create extension if not exists btree_gin;');
    this.addSql(`create index "search_documents_owner_facets_idx" on "search_documents" ("owner_id", "deleted")
      include ("structure_id", "kind", "format", "method", "has_ligand", "atoms", "resolution", "created_at", "updated_at", "project_id", "name", "tags");`);
    this.addSql('drop index if exists "search_documents_document_idx";');
    this.addSql('create index "search_documents_owner_document_idx" on "search_documents" using gin ("owner_id", "document");');
    this.addSql('drop index if exists "search_terms_term_trgm_idx";');
    this.addSql('create index "search_terms_owner_term_trgm_idx" on "search_terms" using gin ("owner_id", "term" gin_trgm_ops);');
  }

  override down(): void {
    this.addSql('drop index if exists "search_terms_owner_term_trgm_idx";');
    this.addSql('create index "search_terms_term_trgm_idx" on "search_terms" using gin ("term" gin_trgm_ops);');
    this.addSql('drop index if exists "search_documents_owner_document_idx";');
    this.addSql('create index "search_documents_document_idx" on "search_documents" using gin ("document");');
    this.addSql('drop index if exists "search_documents_owner_facets_idx";');
  }
}
