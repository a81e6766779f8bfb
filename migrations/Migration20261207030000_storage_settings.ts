import { Migration } from '@mikro-orm/migrations';

/**
 * Settings of the installation that every process must agree on, one row per key. The first is
 * `blob_store`: written by `molvault blobs migrate` once every blob is verified in the new store;
 * a process whose BLOB_STORE disagrees then refuses to start instead of writing to the old one.
 */
export class Migration20261207030000_storage_settings extends Migration {
  override name = 'Migration20261207030000_storage_settings';

  override up(): void {
    this.addSql(`create table "storage_settings" (
      "key" text primary key,
      "value" jsonb not null,
      "updated_at" timestamptz not null default now()
    )`);
  }

  override down(): void {
    this.addSql('drop table if exists "storage_settings"');
  }
}
