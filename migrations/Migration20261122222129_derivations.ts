import { Migration } from '@mikro-orm/migrations';

export class Migration20261122222129_derivations extends Migration {
  override name = 'Migration20261122222129_derivations';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "derivations" ("id" uuid not null, "source_blob_sha256" varchar(64) not null, "format" varchar(255) not null, "options" jsonb not null, "options_key" varchar(255) not null, "engine" varchar(255) not null, "engine_version" varchar(255) not null, "blob_sha256" varchar(64) not null, "loss" jsonb not null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "derivations_blob_sha256_index" on "derivations" ("blob_sha256");`);
    this.addSql(
      `alter table "derivations" add constraint "derivations_source_blob_sha256_format_options_key_unique" unique ("source_blob_sha256", "format", "options_key");`,
    );

    this.addSql(
      `alter table "derivations" add constraint "derivations_source_blob_sha256_foreign" foreign key ("source_blob_sha256") references "blobs" ("sha256") on delete cascade;`,
    );
    this.addSql(
      `alter table "derivations" add constraint "derivations_blob_sha256_foreign" foreign key ("blob_sha256") references "blobs" ("sha256") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "derivations" cascade;`);
  }
}
