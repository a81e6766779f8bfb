import { Migration } from '@mikro-orm/migrations';

/** Resuming an import asks which raw checksums a project already stores (POST /v1/projects/:id/imports/known). */
export class Migration20261123005746_upload_project_hash_index extends Migration {
  override name = 'Migration20261123005746_upload_project_hash_index';

  override up(): void {
    this.addSql('create index "uploads_project_id_received_sha256_index" on "uploads" ("project_id", "received_sha256");');
  }

  override down(): void {
    this.addSql('drop index if exists "uploads_project_id_received_sha256_index";');
  }
}
