import { Migration } from '@mikro-orm/migrations';

export class Migration20261123005800_export_archives extends Migration {
  override name = 'Migration20261123005800_export_archives';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "export_archives" ("id" uuid not null, "owner_id" uuid not null, "project_id" uuid null, "selection" jsonb null, "format" varchar(255) not null, "versions" text not null default 'current', "archive" text not null default 'zip', "state" text not null default 'pending', "filename" varchar(255) not null, "blob_sha256" varchar(64) null, "size" bigint not null default '0', "file_count" int not null default 0, "problems" jsonb not null default '[]', "error" jsonb null, "expires_at" timestamptz not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "finished_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(`create index "export_archives_project_id_index" on "export_archives" ("project_id");`);
    this.addSql(`create index "export_archives_blob_sha256_index" on "export_archives" ("blob_sha256");`);
    this.addSql(`create index "export_archives_owner_id_created_at_index" on "export_archives" ("owner_id", "created_at");`);
    this.addSql(`create index "export_archives_state_expires_at_index" on "export_archives" ("state", "expires_at");`);

    this.addSql(
      `alter table "export_archives" add constraint "export_archives_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "export_archives" add constraint "export_archives_project_id_foreign" foreign key ("project_id") references "projects" ("id") on delete set null;`,
    );
    this.addSql(
      `alter table "export_archives" add constraint "export_archives_blob_sha256_foreign" foreign key ("blob_sha256") references "blobs" ("sha256") on delete set null;`,
    );
    this.addSql(`alter table "export_archives" add constraint "export_archives_versions_check" check ("versions" in ('current', 'all'));`);
    this.addSql(`alter table "export_archives" add constraint "export_archives_archive_check" check ("archive" in ('zip', 'tar.gz'));`);
    this.addSql(
      `alter table "export_archives" add constraint "export_archives_state_check" check ("state" in ('pending', 'running', 'completed', 'failed', 'expired'));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "export_archives" cascade;`);
  }
}
