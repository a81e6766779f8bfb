import { Migration } from '@mikro-orm/migrations';

export class Migration20261122203248_initial extends Migration {
  override name = 'Migration20261122203248_initial';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "blobs" ("sha256" varchar(64) not null, "size" bigint not null, "stored_size" bigint not null, "media_type" varchar(255) not null default 'application/octet-stream', "created_at" timestamptz not null, primary key ("sha256"));`,
    );

    this.addSql(
      `create table "users" ("id" uuid not null, "email" varchar(255) not null, "name" varchar(255) null, "role" text not null default 'user', "quota_bytes" bigint not null, "disabled" boolean not null default false, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "users" add constraint "users_email_unique" unique ("email");`);
    this.addSql(`alter table "users" add constraint "users_role_check" check ("role" in ('user', 'admin'));`);

    this.addSql(
      `create table "projects" ("id" uuid not null, "owner_id" uuid not null, "name" varchar(255) not null, "description" text not null default '', "tags" text[] not null default '{}', "metadata" jsonb not null default '{}', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "projects" add constraint "projects_owner_id_name_unique" unique ("owner_id", "name");`);

    this.addSql(
      `create table "uploads" ("id" uuid not null, "owner_id" uuid not null, "project_id" uuid not null, "structure_id" uuid not null, "creates_structure" boolean not null, "state" text not null default 'received', "filename" varchar(255) not null, "format_hint" varchar(255) null, "format" varchar(255) null, "compression" varchar(255) null, "received_bytes" bigint not null, "params" jsonb not null default '{}', "blob_sha256" varchar(64) null, "kind" varchar(255) null, "summary" jsonb null, "validation" jsonb null, "error" jsonb null, "version" int null, "indexed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "uploads_owner_id_index" on "uploads" ("owner_id");`);
    this.addSql(`create index "uploads_state_updated_at_index" on "uploads" ("state", "updated_at");`);
    this.addSql(`alter table "uploads" add constraint "uploads_state_check" check ("state" in ('received', 'processing', 'stored', 'rejected', 'failed'));`);

    this.addSql(
      `create table "structures" ("id" uuid not null, "project_id" uuid not null, "owner_id" uuid not null, "name" varchar(255) not null, "description" text not null default '', "kind" text not null default 'other', "tags" text[] not null default '{}', "metadata" jsonb not null default '{}', "current_version_id" uuid null, "deleted_at" timestamptz null, "view_count" bigint not null default '0', "download_count" bigint not null default '0', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "structures_project_id_index" on "structures" ("project_id");`);
    this.addSql(`create index "structures_owner_id_created_at_index" on "structures" ("owner_id", "created_at");`);
    this.addSql(`alter table "structures" add constraint "structures_kind_check" check ("kind" in ('macromolecule', 'small-molecule', 'session', 'other'));`);

    this.addSql(
      `create table "structure_versions" ("id" uuid not null, "structure_id" uuid not null, "number" int not null, "blob_sha256" varchar(64) not null, "format" varchar(255) not null, "filename" varchar(255) not null, "message" text null, "author_id" uuid null, "summary" jsonb not null, "validation" jsonb not null, "pinned" boolean not null default false, "upload" uuid null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "structure_versions_blob_sha256_index" on "structure_versions" ("blob_sha256");`);
    this.addSql(`alter table "structure_versions" add constraint "structure_versions_upload_unique" unique ("upload");`);
    this.addSql(`alter table "structure_versions" add constraint "structure_versions_structure_id_number_unique" unique ("structure_id", "number");`);

    this.addSql(
      `create table "api_tokens" ("id" uuid not null, "user_id" uuid not null, "name" varchar(255) null, "token_hash" varchar(64) not null, "token_prefix" varchar(16) not null, "expires_at" timestamptz null, "revoked_at" timestamptz null, "last_used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "api_tokens_user_id_index" on "api_tokens" ("user_id");`);
    this.addSql(`alter table "api_tokens" add constraint "api_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(`alter table "projects" add constraint "projects_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`);

    this.addSql(`alter table "uploads" add constraint "uploads_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`);
    this.addSql(`alter table "uploads" add constraint "uploads_project_id_foreign" foreign key ("project_id") references "projects" ("id") on delete cascade;`);
    this.addSql(
      `alter table "uploads" add constraint "uploads_blob_sha256_foreign" foreign key ("blob_sha256") references "blobs" ("sha256") on delete set null;`,
    );

    this.addSql(
      `alter table "structures" add constraint "structures_project_id_foreign" foreign key ("project_id") references "projects" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "structures" add constraint "structures_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`);
    this.addSql(
      `alter table "structures" add constraint "structures_current_version_id_foreign" foreign key ("current_version_id") references "structure_versions" ("id") on delete set null;`,
    );

    this.addSql(
      `alter table "structure_versions" add constraint "structure_versions_structure_id_foreign" foreign key ("structure_id") references "structures" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "structure_versions" add constraint "structure_versions_blob_sha256_foreign" foreign key ("blob_sha256") references "blobs" ("sha256");`,
    );
    this.addSql(
      `alter table "structure_versions" add constraint "structure_versions_author_id_foreign" foreign key ("author_id") references "users" ("id") on delete set null;`,
    );

    this.addSql(`alter table "api_tokens" add constraint "api_tokens_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`);
  }
}
