import { Migration } from '@mikro-orm/migrations';

/**
 * The Postgres search index: one denormalised row per structure, written only by the index job.
 * Weighted tsvector + GIN for full text, pg_trgm over the same text for prefixes and typos.
 */
export class Migration20261122203500_search extends Migration {
  override name = 'Migration20261122203500_search';

  override up(): void {
    this.addSql('create extension if not exists pg_trgm;');
    this.addSql(`create table "search_documents" (
      "structure_id" uuid primary key references "structures" ("id") on delete cascade,
      "owner_id" uuid not null,
      "project_id" uuid not null,
      "name" text not null,
      "kind" text not null,
      "format" text null,
      "tags" text[] not null default '{}',
      "method" text null,
      "atoms" integer null,
      "resolution" double precision null,
      "deleted" boolean not null default false,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      "indexed_at" timestamptz not null default now(),
      "body" text not null,
      "document" tsvector not null,
      "data" jsonb not null
    );`);
    this.addSql('create index "search_documents_document_idx" on "search_documents" using gin ("document");');
    this.addSql('create index "search_documents_tags_idx" on "search_documents" using gin ("tags");');
    this.addSql('create index "search_documents_body_trgm_idx" on "search_documents" using gin ("body" gin_trgm_ops);');
    this.addSql('create index "search_documents_owner_created_idx" on "search_documents" ("owner_id", "created_at");');
  }

  override down(): void {
    this.addSql('drop table if exists "search_documents";');
  }
}
