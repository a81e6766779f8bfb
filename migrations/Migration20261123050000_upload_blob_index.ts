import { Migration } from '@mikro-orm/migrations';

/**
 * Uploads by blob: removing a refused file's blob clears it from its uploads (and the foreign key's
 * ON DELETE SET NULL looks them up too). Without this index each removal read the whole uploads
 * table, which an import of thousands of files grows as it goes (seen in bench:import: 2 ms each).
 */
export class Migration20261123050000_upload_blob_index extends Migration {
  override name = 'Migration20261123050000_upload_blob_index';

  override up(): void {
    this.addSql('create index "uploads_blob_sha256_index" on "uploads" ("blob_sha256");');
  }

  override down(): void {
    this.addSql('drop index if exists "uploads_blob_sha256_index";');
  }
}
