import { Migration } from '@mikro-orm/migrations';

/** The keyset indexes: sort key (in the direction each is walked), and the columns carried besides the filters. */
const SORT_INDEXES: [name: string, key: string, extra: string][] = [
  ['created', '"created_at", "structure_id"', ''],
  ['updated', '"updated_at", "structure_id"', ''],
  // An index-only scan needs the column under an expression key, not only the expression.
  ['name', 'lower("name"), "structure_id"', ', "name"'],
  ['atoms', '"atoms", "structure_id"', ''],
  ['atoms_desc', '"atoms" desc nulls last, "structure_id" desc', ''],
  ['resolution', '"resolution", "structure_id"', ''],
  ['resolution_desc', '"resolution" desc nulls last, "structure_id" desc', ''],
];
/** Every column a filter reads, so a sorted walk tests its filters in the index (index-only). */
const FILTER_COLUMNS = ['"deleted"', '"kind"', '"format"', '"method"', '"has_ligand"', '"project_id"', '"atoms"', '"resolution"', '"created_at"'];
/** The filter columns a keyset index carries: those not already in its key. */
const carried = (key: string) => FILTER_COLUMNS.filter((column) => !key.includes(column)).join(', ');

/**
 * Search, measured at 100,000 documents over ten owners, spent most of its time reading one owner's
 * whole posting list (10,000 entries) out of the (owner, document) GIN index for every word, and
 * counting or faceting every one of the owner's rows for totals and facets. Now:
 *  - words and tags are scoped to their owner inside the index: each lexeme and tag is stored as
 *    "<owner key>:<word>", so a word's posting list holds only its owner's documents and a prefix
 *    scans only its owner's words. The owner key is a hash prefix; owner_id is still checked, so
 *    two owners sharing a key only share index entries, never results;
 *  - per-owner counts (by trash flag, kind, format, method, project and ligand flag; and by tag),
 *    kept exact by statement triggers on search_documents, answer totals and facets of searches
 *    without words, tags or ranges without reading the documents;
 *  - the keyset sort indexes carry every filter column, so a sorted, filtered listing is an
 *    index-only walk instead of a heap fetch per skipped row.
 * Hand-written: these tables belong to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261123011128_search_scoped extends Migration {
  override name = 'Migration20261123011128_search_scoped';

  override up(): void {
    this.addSql(`create function "search_owner_key"("owner" uuid) returns text language sql immutable parallel safe
      as $$ select left(md5("owner"::text), 10) $$;`);
    // Rewrites each quoted lexeme of the text form ('word':1A … or 'word':* & …) as 'key:word'.
    this.addSql(`create function "search_scope_tsvector"("owner" uuid, "document" tsvector) returns tsvector language sql immutable parallel safe
      as $$ select regexp_replace("document"::text, '''((?:[^'']|'''')*)''', '''' || search_owner_key("owner") || ':\\1''', 'g')::tsvector $$;`);
    this.addSql(`create function "search_scope_tsquery"("owner" uuid, "query" tsquery) returns tsquery language sql immutable parallel safe
      as $$ select regexp_replace("query"::text, '''((?:[^'']|'''')*)''', '''' || search_owner_key("owner") || ':\\1''', 'g')::tsquery $$;`);
    this.addSql(`create function "search_scope_tags"("owner" uuid, "tags" text[]) returns text[] language sql immutable parallel safe
      as $$ select coalesce(array_agg(search_owner_key("owner") || ':' || t order by n), '{}') from unnest("tags") with ordinality as u(t, n) $$;`);

    this.addSql('drop index if exists "search_documents_owner_document_idx";');
    this.addSql('drop index if exists "search_documents_tags_idx";');
    for (const [name] of SORT_INDEXES) this.addSql(`drop index if exists "search_documents_owner_${name}_idx";`);
    this.addSql('alter table "search_documents" add column "scoped_document" tsvector null, add column "scoped_tags" text[] null;');
    // Matching and ranking read every matched row's vector: keep it uncompressed in the row (MAIN is
    // compressed only after the other wide columns, the stored document first, have been compressed
    // or moved out), else each match pays a decompression.
    this.addSql('alter table "search_documents" alter column "scoped_document" set storage main;');
    this.addSql(`update "search_documents" set "scoped_document" = search_scope_tsvector("owner_id", "document"),
      "scoped_tags" = search_scope_tags("owner_id", "tags");`);
    this.addSql(`alter table "search_documents" alter column "scoped_document" set not null, alter column "scoped_tags" set not null,
      drop column "document";`);
    this.addSql('create index "search_documents_scoped_document_idx" on "search_documents" using gin ("scoped_document");');
    this.addSql('create index "search_documents_scoped_tags_idx" on "search_documents" using gin ("scoped_tags");');
    for (const [name, key, extra] of SORT_INDEXES) {
      this.addSql(`create index "search_documents_owner_${name}_idx" on "search_documents" ("owner_id", ${key}) include (${carried(key)}${extra});`);
    }

    this.addSql(`create table "search_counts" (
      "owner_id" uuid not null,
      "deleted" boolean not null,
      "kind" text not null,
      "format" text not null,
      "method" text not null,
      "project_id" uuid not null,
      "has_ligand" boolean not null,
      "documents" integer not null,
      primary key ("owner_id", "deleted", "kind", "format", "method", "project_id", "has_ligand")
    );`);
    this.addSql(`create table "search_tag_counts" (
      "owner_id" uuid not null,
      "deleted" boolean not null,
      "tag" text not null,
      "documents" integer not null,
      primary key ("owner_id", "deleted", "tag")
    );`);
    // One function for the three statement triggers: each branch reads only its event's transition tables.
    // One owner's counts are changed by one transaction at a time (a lock per owner, taken in key order):
    // an upsert fires its insert and its update trigger, each changing several count rows, and two
    // writers taking those rows in different orders would deadlock.
    const apply = (rows: string) => `
      perform pg_advisory_xact_lock(k) from (
        select distinct hashtextextended('search-counts:' || owner_id::text, 0) as k from (${rows}) changes order by 1) owners;
      insert into search_counts as c (owner_id, deleted, kind, format, method, project_id, has_ligand, documents)
      select owner_id, deleted, kind, coalesce(format, ''), coalesce(method, ''), project_id, has_ligand, sum(change)::integer
      from (${rows}) changes
      group by 1, 2, 3, 4, 5, 6, 7 having sum(change) <> 0 order by 1, 2, 3, 4, 5, 6, 7
      on conflict (owner_id, deleted, kind, format, method, project_id, has_ligand) do update set documents = c.documents + excluded.documents;
      insert into search_tag_counts as c (owner_id, deleted, tag, documents)
      select owner_id, deleted, tag, sum(change)::integer
      from (${rows}) changes, unnest(changes.tags) as tag
      group by 1, 2, 3 having sum(change) <> 0 order by 1, 2, 3
      on conflict (owner_id, deleted, tag) do update set documents = c.documents + excluded.documents;`;
    const columns = 'owner_id, deleted, kind, format, method, project_id, has_ligand, tags';
    this.addSql(`create function "search_documents_count"() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then${apply(`select ${columns}, 1 as change from new_rows`)}
      elsif tg_op = 'UPDATE' then${apply(`select ${columns}, 1 as change from new_rows union all select ${columns}, -1 from old_rows`)}
      else${apply(`select ${columns}, -1 as change from old_rows`)}
      end if;
      return null;
    end $$;`);
    this.addSql(`create trigger "search_documents_count_insert" after insert on "search_documents"
      referencing new table as new_rows for each statement execute function search_documents_count();`);
    this.addSql(`create trigger "search_documents_count_update" after update on "search_documents"
      referencing old table as old_rows new table as new_rows for each statement execute function search_documents_count();`);
    this.addSql(`create trigger "search_documents_count_delete" after delete on "search_documents"
      referencing old table as old_rows for each statement execute function search_documents_count();`);
    this.addSql(`insert into search_counts (owner_id, deleted, kind, format, method, project_id, has_ligand, documents)
      select owner_id, deleted, kind, coalesce(format, ''), coalesce(method, ''), project_id, has_ligand, count(*)
      from search_documents group by 1, 2, 3, 4, 5, 6, 7;`);
    this.addSql(`insert into search_tag_counts (owner_id, deleted, tag, documents)
      select owner_id, deleted, tag, count(*) from search_documents, unnest(tags) as tag group by 1, 2, 3;`);
  }

  override down(): void {
    this.addSql('drop trigger if exists "search_documents_count_insert" on "search_documents";');
    this.addSql('drop trigger if exists "search_documents_count_update" on "search_documents";');
    this.addSql('drop trigger if exists "search_documents_count_delete" on "search_documents";');
    this.addSql('drop function if exists "search_documents_count"();');
    this.addSql('drop table if exists "search_tag_counts";');
    this.addSql('drop table if exists "search_counts";');
    for (const [name] of SORT_INDEXES) this.addSql(`drop index if exists "search_documents_owner_${name}_idx";`);
    // The unscoped vector is the scoped one without its key prefixes.
    this.addSql('alter table "search_documents" add column "document" tsvector null;');
    this.addSql(`update "search_documents" set "document" = regexp_replace("scoped_document"::text, '''[0-9a-f]{10}:', '''', 'g')::tsvector;`);
    this.addSql('alter table "search_documents" alter column "document" set not null, drop column "scoped_document", drop column "scoped_tags";');
    this.addSql('create index "search_documents_owner_document_idx" on "search_documents" using gin ("owner_id", "document");');
    this.addSql('create index "search_documents_tags_idx" on "search_documents" using gin ("tags");');
    for (const [name, key] of SORT_INDEXES) this.addSql(`create index "search_documents_owner_${name}_idx" on "search_documents" ("owner_id", ${key});`);
    this.addSql('drop function if exists "search_scope_tags"(uuid, text[]);');
    this.addSql('drop function if exists "search_scope_tsquery"(uuid, tsquery);');
    this.addSql('drop function if exists "search_scope_tsvector"(uuid, tsvector);');
    this.addSql('drop function if exists "search_owner_key"(uuid);');
  }
}
