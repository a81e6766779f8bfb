import { Migration } from '@mikro-orm/migrations';

/**
 * Search, second form: the columns every filter and sort needs, one keyset index per sort (each
 * led by the owner, since every query is one owner's), and a per-owner vocabulary with a trigram
 * index for typo correction, which is far smaller than trigram-indexing every document's text.
 * Hand-written: these tables belong to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261122221226_search_v2 extends Migration {
  override name = 'Migration20261122221226_search_v2';

  override up(): void {
    this.addSql(`alter table "search_documents"
      add column "residues" integer null,
      add column "chains" integer null,
      add column "has_ligand" boolean not null default false;`);
    this.addSql('drop index if exists "search_documents_body_trgm_idx";');
    this.addSql('drop index if exists "search_documents_owner_created_idx";');
    this.addSql('create index "search_documents_owner_created_idx" on "search_documents" ("owner_id", "created_at", "structure_id");');
    this.addSql('create index "search_documents_owner_updated_idx" on "search_documents" ("owner_id", "updated_at", "structure_id");');
    this.addSql('create index "search_documents_owner_name_idx" on "search_documents" ("owner_id", lower("name"), "structure_id");');
    this.addSql('create index "search_documents_owner_atoms_idx" on "search_documents" ("owner_id", "atoms", "structure_id");');
    this.addSql('create index "search_documents_owner_atoms_desc_idx" on "search_documents" ("owner_id", "atoms" desc nulls last, "structure_id" desc);');
    this.addSql('create index "search_documents_owner_resolution_idx" on "search_documents" ("owner_id", "resolution", "structure_id");');
    this.addSql(
      'create index "search_documents_owner_resolution_desc_idx" on "search_documents" ("owner_id", "resolution" desc nulls last, "structure_id" desc);',
    );
    this.addSql('create index "search_documents_project_idx" on "search_documents" ("project_id");');
    this.addSql(`create table "search_terms" (
      "owner_id" uuid not null,
      "term" text not null,
      primary key ("owner_id", "term")
    );`);
    this.addSql('create index "search_terms_term_trgm_idx" on "search_terms" using gin ("term" gin_trgm_ops);');
  }

  override down(): void {
    this.addSql('drop table if exists "search_terms";');
    for (const index of ['updated', 'name', 'atoms', 'atoms_desc', 'resolution', 'resolution_desc']) {
      this.addSql(`drop index if exists "search_documents_owner_${index}_idx";`);
    }
    this.addSql('drop index if exists "search_documents_project_idx";');
    this.addSql('alter table "search_documents" drop column "residues", drop column "chains", drop column "has_ligand";');
    this.addSql('create index "search_documents_body_trgm_idx" on "search_documents" using gin ("body" gin_trgm_ops);');
  }
}
