import { Migration } from '@mikro-orm/migrations';

export class Migration20261123010121_imports extends Migration {
  override name = 'Migration20261123010121_imports';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "import_batches" ("id" uuid not null, "owner_id" uuid not null, "project_id" uuid not null, "source" text not null, "state" text not null default 'receiving', "error" jsonb null, "options" jsonb not null default '{}', "job_id" varchar(255) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "finished_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(`create index "import_batches_project_id_index" on "import_batches" ("project_id");`);
    this.addSql(`create index "import_batches_owner_id_created_at_index" on "import_batches" ("owner_id", "created_at");`);
    this.addSql(`create index "import_batches_state_updated_at_index" on "import_batches" ("state", "updated_at");`);

    this.addSql(
      `create table "import_items" ("id" uuid not null, "batch_id" uuid not null, "position" int not null, "name" text not null, "state" text not null default 'pending', "upload_id" uuid null, "structure_id" uuid null, "error" jsonb null, "sha256" varchar(64) null, "received_sha256" varchar(64) null, "size" bigint null, "restore" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "import_items_batch_id_state_index" on "import_items" ("batch_id", "state");`);
    this.addSql(`create index "import_items_sha256_index" on "import_items" ("sha256");`);
    this.addSql(`alter table "import_items" add constraint "import_items_batch_id_position_unique" unique ("batch_id", "position");`);

    this.addSql(
      `alter table "import_batches" add constraint "import_batches_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "import_batches" add constraint "import_batches_project_id_foreign" foreign key ("project_id") references "projects" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "import_batches" add constraint "import_batches_source_check" check ("source" in ('files', 'archive', 'pdb_ids'));`);
    this.addSql(
      `alter table "import_batches" add constraint "import_batches_state_check" check ("state" in ('receiving', 'expanding', 'running', 'completed', 'failed'));`,
    );

    this.addSql(
      `alter table "import_items" add constraint "import_items_batch_id_foreign" foreign key ("batch_id") references "import_batches" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "import_items" add constraint "import_items_upload_id_foreign" foreign key ("upload_id") references "uploads" ("id") on delete set null;`,
    );
    this.addSql(
      `alter table "import_items" add constraint "import_items_state_check" check ("state" in ('pending', 'processing', 'stored', 'rejected', 'failed', 'skipped'));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "import_items" cascade;`);
    this.addSql(`drop table if exists "import_batches" cascade;`);
  }
}
