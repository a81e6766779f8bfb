import { Migration } from '@mikro-orm/migrations';

/**
 * Whether an import item's staged bytes are gzip or bzip2, seen as they were staged. The chunk job
 * decides by it which files take the bulk path; without it each file's first bytes were read back
 * from staging, a request per file on an object store.
 */
export class Migration20261207104000_import_items_received_compression extends Migration {
  override name = 'Migration20261207104000_import_items_received_compression';

  override up(): void {
    this.addSql(`alter table "import_items" add column "received_compression" text null;`);
  }

  override down(): void {
    this.addSql('alter table "import_items" drop column "received_compression";');
  }
}
