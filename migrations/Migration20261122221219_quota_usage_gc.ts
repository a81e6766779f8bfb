import { Migration } from '@mikro-orm/migrations';

export class Migration20261122221219_quota_usage_gc extends Migration {
  override name = 'Migration20261122221219_quota_usage_gc';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "quota_reservations" ("upload_id" uuid not null, "owner_id" uuid not null, "bytes" bigint not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("upload_id"));`,
    );
    this.addSql(`create index "quota_reservations_owner_id_index" on "quota_reservations" ("owner_id");`);

    this.addSql(
      `create table "user_usage" ("user_id" uuid not null, "used_bytes" bigint not null default '0', "breakdown" jsonb not null default '{}', "computed_at" timestamptz not null, primary key ("user_id"));`,
    );

    this.addSql(`alter table "blobs" add "orphaned_at" timestamptz null;`);

    this.addSql(
      `alter table "quota_reservations" add constraint "quota_reservations_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "user_usage" add constraint "user_usage_user_id_foreign" foreign key ("user_id") references "users" ("id") on update cascade on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "quota_reservations" cascade;`);
    this.addSql(`drop table if exists "user_usage" cascade;`);

    this.addSql(`alter table "blobs" drop column "orphaned_at";`);
  }
}
