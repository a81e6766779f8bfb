import { Migration } from '@mikro-orm/migrations';

export class Migration20261122204601_upload_received_hash extends Migration {
  override name = 'Migration20261122204601_upload_received_hash';

  override up(): void | Promise<void> {
    this.addSql(`alter table "uploads" add "received_sha256" varchar(64) null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "uploads" drop column "received_sha256";`);
  }
}
