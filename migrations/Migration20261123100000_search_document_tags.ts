import { Migration } from '@mikro-orm/migrations';

/** What a search filters and sorts tagged documents by: carried by the tag index so it answers alone. */
const CARRIED = ['structure_id', 'deleted', 'kind', 'format', 'method', 'project_id', 'has_ligand', 'atoms', 'resolution', 'created_at', 'updated_at', 'name'];

/**
 * The tag index: one row per search document and tag, with every column a search without words
 * filters or sorts by, under a covering (owner, tag) index. A search by tags (and no words) reads its
 * tags' index ranges alone instead of visiting each tagged document's row: bench:search's "tags any"
 * search gathers ~1,150 documents, and those row visits were most of its Postgres time. Written by
 * the Postgres search index with its documents (same statement); removed with them (cascade).
 */
export class Migration20261123100000_search_document_tags extends Migration {
  override name = 'Migration20261123100000_search_document_tags';

  override up(): void {
    this.addSql(`create table "search_document_tags" (
      "structure_id" uuid not null references "search_documents" ("structure_id") on delete cascade,
      "tag" text not null,
      "owner_id" uuid not null,
      "deleted" boolean not null,
      "kind" text not null,
      "format" text null,
      "method" text null,
      "project_id" uuid not null,
      "has_ligand" boolean not null,
      "atoms" integer null,
      "resolution" double precision null,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      "name" text not null,
      primary key ("structure_id", "tag")
    );`);
    this.addSql(`insert into "search_document_tags" ("tag", "owner_id", ${CARRIED.map((c) => `"${c}"`).join(', ')})
      select distinct u.tag, d.owner_id, ${CARRIED.map((c) => `d."${c}"`).join(', ')}
      from "search_documents" d, unnest(d.tags) as u(tag);`);
    this.addSql(`create index "search_document_tags_owner_tag_idx" on "search_document_tags" ("owner_id", "tag")
      include (${CARRIED.map((c) => `"${c}"`).join(', ')});`);
    this.addSql('analyze "search_document_tags";');
  }

  override down(): void {
    this.addSql('drop table if exists "search_document_tags";');
  }
}
