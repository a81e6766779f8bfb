import { Migration } from '@mikro-orm/migrations';

/**
 * Small files of a multipart import staged together: the bundle entry and the offset each file's
 * bytes start at (services/upload/bundles.ts). On an object store a staged object costs a put, a
 * get and a delete; a bundle costs them once per chunk of files instead of once per file.
 */
export class Migration20261207105000_import_items_staged_bundle extends Migration {
  override name = 'Migration20261207105000_import_items_staged_bundle';

  override up(): void {
    this.addSql(`alter table "import_items" add column "staged_bundle" uuid null, add column "staged_offset" bigint null;`);
    this.addSql(`create index "import_items_staged_bundle_index" on "import_items" ("staged_bundle") where "staged_bundle" is not null;`);
  }

  override down(): void {
    this.addSql('alter table "import_items" drop column "staged_bundle", drop column "staged_offset";');
  }
}
