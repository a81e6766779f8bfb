import { Migration } from '@mikro-orm/migrations';

export class Migration20261122221502_drafts_relationships_metadata_schema extends Migration {
  override name = 'Migration20261122221502_drafts_relationships_metadata_schema';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "relationships" ("id" uuid not null, "owner_id" uuid not null, "source_id" uuid not null, "target_id" uuid not null, "type" text not null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "relationships_owner_id_index" on "relationships" ("owner_id");`);
    this.addSql(`create index "relationships_target_id_index" on "relationships" ("target_id");`);
    this.addSql(`alter table "relationships" add constraint "relationships_source_id_target_id_type_unique" unique ("source_id", "target_id", "type");`);

    this.addSql(
      `create table "drafts" ("id" uuid not null, "structure_id" uuid not null, "owner_id" uuid not null, "blob_sha256" varchar(64) not null, "format" varchar(255) not null, "filename" varchar(255) not null, "size" bigint not null, "checkpoint_upload" uuid null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "drafts" add constraint "drafts_structure_id_unique" unique ("structure_id");`);
    this.addSql(`create index "drafts_owner_id_index" on "drafts" ("owner_id");`);
    this.addSql(`create index "drafts_blob_sha256_index" on "drafts" ("blob_sha256");`);

    this.addSql(`alter table "projects" add "metadata_schema" jsonb null;`);

    this.addSql(
      `alter table "relationships" add constraint "relationships_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "relationships" add constraint "relationships_source_id_foreign" foreign key ("source_id") references "structures" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "relationships" add constraint "relationships_target_id_foreign" foreign key ("target_id") references "structures" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "relationships" add constraint "relationships_type_check" check ("type" in ('derived-from', 'ligand-of', 'related'));`);

    this.addSql(
      `alter table "drafts" add constraint "drafts_structure_id_foreign" foreign key ("structure_id") references "structures" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "drafts" add constraint "drafts_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`);
    this.addSql(`alter table "drafts" add constraint "drafts_blob_sha256_foreign" foreign key ("blob_sha256") references "blobs" ("sha256");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "relationships" cascade;`);
    this.addSql(`drop table if exists "drafts" cascade;`);

    this.addSql(`alter table "projects" drop column "metadata_schema";`);
  }
}
