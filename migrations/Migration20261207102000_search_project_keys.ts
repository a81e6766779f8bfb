import { Migration } from '@mikro-orm/migrations';

/** What a search filters and sorts tagged documents by (as the tag index's owner index carries them), the owner instead of the project. */
const CARRIED = ['structure_id', 'deleted', 'kind', 'format', 'method', 'owner_id', 'has_ligand', 'atoms', 'resolution', 'created_at', 'updated_at', 'name'];

/**
 * Words and tags indexed under their project's key as well as their owner's. A search by someone a
 * project is shared with read the project owner's entries whole (every project of theirs) and
 * dropped the other projects' documents one by one; now it reads the shared project's entries only.
 * The keys do not depend on who a project is shared with, so nothing changes in the index when
 * members come and go: which keys a search reads is decided by the searcher's visibility alone.
 *  - search_project_key: "p" and a hash prefix. An owner key is ten hex digits, so a project key never
 *    equals one; the owner and project are still checked, so two projects sharing a key only share
 *    index entries, never results.
 *  - search_index_tsvector / search_index_tags: what the index stores, the owner's keyed words (or
 *    tags) and the project's, with the same positions and weights.
 *  - search_document_tags gets a (project, tag) index, as it has an (owner, tag) one.
 *  - search_terms loses its trigram index, unused since typos are found through deletion variants
 *    (search_words): for a term looked up among several owners' terms the planner chose it over the
 *    (owner, term) key, and read every owner's entries holding the term's trigrams.
 * Hand-written: these belong to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261207102000_search_project_keys extends Migration {
  override name = 'Migration20261207102000_search_project_keys';

  override up(): void {
    this.addSql(`create function "search_project_key"("project" uuid) returns text language sql immutable parallel safe
      as $$ select 'p' || left(md5("project"::text), 10) $$;`);
    // As search_scope_tsvector, search_scope_tsquery and search_scope_tags do with the owner's key.
    this.addSql(`create function "search_project_tsvector"("project" uuid, "document" tsvector) returns tsvector language sql immutable parallel safe
      as $$ select regexp_replace("document"::text, '''((?:[^'']|'''')*)''', '''' || search_project_key("project") || ':\\1''', 'g')::tsvector $$;`);
    this.addSql(`create function "search_project_tsquery"("project" uuid, "query" tsquery) returns tsquery language sql immutable parallel safe
      as $$ select regexp_replace("query"::text, '''((?:[^'']|'''')*)''', '''' || search_project_key("project") || ':\\1''', 'g')::tsquery $$;`);
    this.addSql(`create function "search_project_tags"("project" uuid, "tags" text[]) returns text[] language sql immutable parallel safe
      as $$ select coalesce(array_agg(search_project_key("project") || ':' || t order by n), '{}') from unnest("tags") with ordinality as u(t, n) $$;`);
    // Joined as text, not with ||, which would move the second half's positions past the first's.
    this.addSql(`create function "search_index_tsvector"("owner" uuid, "project" uuid, "document" tsvector) returns tsvector language sql immutable parallel safe
      as $$ select (search_scope_tsvector("owner", "document")::text || ' ' || search_project_tsvector("project", "document")::text)::tsvector $$;`);
    this.addSql(`create function "search_index_tags"("owner" uuid, "project" uuid, "tags" text[]) returns text[] language sql immutable parallel safe
      as $$ select search_scope_tags("owner", "tags") || search_project_tags("project", "tags") $$;`);

    // A document's words are read for every match (ranked) and must stay uncompressed in the row:
    // with the project's keys a third of the vectors went over the 2 kB at which Postgres starts
    // compressing a row's values, and their decompression became the largest cost of a text search.
    // Rows are left whole up to (nearly) a page; above that the other wide values go first.
    this.addSql('alter table "search_documents" set (toast_tuple_target = 8160);');
    // Every document re-keyed from its owner-keyed words (its owner's key taken off), with the GIN
    // indexes built afresh afterwards rather than updated row by row.
    this.addSql('drop index if exists "search_documents_scoped_document_idx";');
    this.addSql('drop index if exists "search_documents_scoped_tags_idx";');
    this.addSql(`update "search_documents" set
      "scoped_document" = search_index_tsvector("owner_id", "project_id",
        replace("scoped_document"::text, '''' || search_owner_key("owner_id") || ':', '''')::tsvector),
      "scoped_tags" = search_index_tags("owner_id", "project_id", "tags");`);
    this.addSql('create index "search_documents_scoped_document_idx" on "search_documents" using gin ("scoped_document");');
    this.addSql('create index "search_documents_scoped_tags_idx" on "search_documents" using gin ("scoped_tags");');
    this.addSql(`create index "search_document_tags_project_tag_idx" on "search_document_tags" ("project_id", "tag")
      include (${CARRIED.map((c) => `"${c}"`).join(', ')});`);
    // The update left every row's old version behind (the migration runs in a transaction: no vacuum here).
    this.addSql('drop index if exists "search_terms_owner_term_trgm_idx";');
    this.addSql('analyze "search_documents";');
    this.addSql('analyze "search_document_tags";');
  }

  override down(): void {
    this.addSql('create index "search_terms_owner_term_trgm_idx" on "search_terms" using gin ("owner_id", "term" gin_trgm_ops);');
    this.addSql('alter table "search_documents" reset (toast_tuple_target);');
    this.addSql('drop index if exists "search_document_tags_project_tag_idx";');
    this.addSql('drop index if exists "search_documents_scoped_document_idx";');
    this.addSql('drop index if exists "search_documents_scoped_tags_idx";');
    // Only the owner-keyed words and tags are kept: every project-keyed entry ('p<key>:word':positions) taken out.
    this.addSql(`update "search_documents" set
      "scoped_document" = regexp_replace("scoped_document"::text, '''p[0-9a-f]{10}:(?:[^'']|'''')*''(?::[0-9A-D,]+)?\\s*', '', 'g')::tsvector,
      "scoped_tags" = search_scope_tags("owner_id", "tags");`);
    this.addSql('create index "search_documents_scoped_document_idx" on "search_documents" using gin ("scoped_document");');
    this.addSql('create index "search_documents_scoped_tags_idx" on "search_documents" using gin ("scoped_tags");');
    this.addSql('drop function if exists "search_index_tags"(uuid, uuid, text[]);');
    this.addSql('drop function if exists "search_index_tsvector"(uuid, uuid, tsvector);');
    this.addSql('drop function if exists "search_project_tags"(uuid, text[]);');
    this.addSql('drop function if exists "search_project_tsquery"(uuid, tsquery);');
    this.addSql('drop function if exists "search_project_tsvector"(uuid, tsvector);');
    this.addSql('drop function if exists "search_project_key"(uuid);');
  }
}
