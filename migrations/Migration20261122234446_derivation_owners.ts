import { Migration } from '@mikro-orm/migrations';

export class Migration20261122234446_derivation_owners extends Migration {
  override name = 'Migration20261122234446_derivation_owners';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "derivation_owners" ("derivation_id" uuid not null, "owner_id" uuid not null, "created_at" timestamptz not null, primary key ("derivation_id", "owner_id"));`,
    );
    this.addSql(`create index "derivation_owners_owner_id_index" on "derivation_owners" ("owner_id");`);

    this.addSql(
      `alter table "derivation_owners" add constraint "derivation_owners_derivation_id_foreign" foreign key ("derivation_id") references "derivations" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "derivation_owners" add constraint "derivation_owners_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on update cascade on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "derivation_owners" cascade;`);
  }
}
