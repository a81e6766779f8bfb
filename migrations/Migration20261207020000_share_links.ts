import { Migration } from '@mikro-orm/migrations';

/**
 * Share links (an unguessable id in the URL, an optional password kept as a scrypt hash) and the
 * keys that sign download URLs when none are configured. A link goes with its structure (purge)
 * and with the user who made it.
 */
export class Migration20261207020000_share_links extends Migration {
  override name = 'Migration20261207020000_share_links';

  override up(): void {
    this.addSql(`create table "share_links" (
      "id" text not null primary key,
      "structure_id" uuid not null,
      "created_by_id" uuid not null,
      "version" int null,
      "format" text not null default 'original',
      "password_hash" text null,
      "expires_at" timestamptz null,
      "revoked_at" timestamptz null,
      "last_used_at" timestamptz null,
      "created_at" timestamptz not null default now()
    );`);
    this.addSql(`create index "share_links_structure_id_index" on "share_links" ("structure_id", "created_at" desc);`);
    this.addSql(`create index "share_links_created_by_id_index" on "share_links" ("created_by_id");`);
    this.addSql(
      `alter table "share_links" add constraint "share_links_structure_id_foreign" foreign key ("structure_id") references "structures" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "share_links" add constraint "share_links_created_by_id_foreign" foreign key ("created_by_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(`create table "signing_keys" (
      "kid" text not null primary key,
      "secret" text not null,
      "created_at" timestamptz not null default now()
    );`);
  }

  override down(): void {
    this.addSql('drop table if exists "share_links";');
    this.addSql('drop table if exists "signing_keys";');
  }
}
