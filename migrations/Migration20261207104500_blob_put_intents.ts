import { Migration } from '@mikro-orm/migrations';

/**
 * Blobs being put into the store before the transaction that records them. A row, written under the
 * blob's lock before the put, holds the blob like a reference: nothing deletes those bytes while it
 * is there, so the recording transaction knows they are still stored without asking the store.
 */
export class Migration20261207104500_blob_put_intents extends Migration {
  override name = 'Migration20261207104500_blob_put_intents';

  override up(): void {
    this.addSql(`create table "blob_put_intents" (
      "id" uuid not null primary key,
      "sha256" text not null,
      "created_at" timestamptz not null default clock_timestamp()
    );`);
    this.addSql('create index "blob_put_intents_sha256_index" on "blob_put_intents" ("sha256");');
    this.addSql('create index "blob_put_intents_created_at_index" on "blob_put_intents" ("created_at");');
  }

  override down(): void {
    this.addSql('drop table if exists "blob_put_intents";');
  }
}
