import { Migration } from '@mikro-orm/migrations';

export class Migration20261122221238_history extends Migration {
  override name = 'Migration20261122221238_history';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "version_diffs" ("key" varchar(64) not null, "from_blob_sha256" varchar(64) not null, "to_blob_sha256" varchar(64) not null, "options" jsonb not null, "result" jsonb not null, "compute_ms" int not null, "created_at" timestamptz not null, primary key ("key"));`,
    );
    this.addSql(`create index "version_diffs_from_blob_sha256_index" on "version_diffs" ("from_blob_sha256");`);
    this.addSql(`create index "version_diffs_to_blob_sha256_index" on "version_diffs" ("to_blob_sha256");`);

    this.addSql(`alter table "projects" add "prune_keep_last" int null, add "prune_keep_days" int null;`);

    this.addSql(`create index "structures_owner_id_deleted_at_index" on "structures" ("owner_id", "deleted_at");`);

    this.addSql(
      `alter table "version_diffs" add constraint "version_diffs_from_blob_sha256_foreign" foreign key ("from_blob_sha256") references "blobs" ("sha256") on delete cascade;`,
    );
    this.addSql(
      `alter table "version_diffs" add constraint "version_diffs_to_blob_sha256_foreign" foreign key ("to_blob_sha256") references "blobs" ("sha256") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "version_diffs" cascade;`);

    this.addSql(`alter table "projects" drop column "prune_keep_last", drop column "prune_keep_days";`);

    this.addSql(`drop index "structures_owner_id_deleted_at_index";`);
  }
}
