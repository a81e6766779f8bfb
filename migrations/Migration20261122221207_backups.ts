import { Migration } from '@mikro-orm/migrations';

export class Migration20261122221207_backups extends Migration {
  override name = 'Migration20261122221207_backups';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "backups" ("id" varchar(32) not null, "kind" text not null, "state" text not null default 'running', "created_at" timestamptz not null, "finished_at" timestamptz null, "size_bytes" bigint not null default '0', "total_bytes" bigint not null default '0', "blob_count" int not null default 0, "new_blob_count" int not null default 0, "path" text not null, "error" text null, primary key ("id"));`,
    );

    this.addSql(`alter table "backups" add constraint "backups_kind_check" check ("kind" in ('scheduled', 'manual', 'restore-point'));`);
    this.addSql(`alter table "backups" add constraint "backups_state_check" check ("state" in ('running', 'complete', 'failed'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "backups" cascade;`);
  }
}
