import { Migration } from '@mikro-orm/migrations';

/**
 * Each project's own vocabulary (the words a typo may stand for), beside each owner's (search_terms).
 * A search by someone a project is shared with checked the project owner's whole vocabulary, every
 * project of theirs: a word found only in a project the searcher cannot see still decided whether
 * the searcher's word was taken as typed, and which corrections filled the few places for them, so
 * results could hint at words in projects the searcher may not see. Shared projects are now checked
 * against their own vocabularies only. Deletion variants of the terms come through the same trigger
 * function as the owners' terms (search_terms_variants). Filled here from the project-keyed words
 * already in the index; the index keeps it (postgres.ts upsertMany, rebuild).
 * Hand-written: it belongs to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261207121000_search_project_terms extends Migration {
  override name = 'Migration20261207121000_search_project_terms';

  override up(): void {
    this.addSql(`create table "search_project_terms" (
      "project_id" uuid not null,
      "term" text not null,
      primary key ("project_id", "term")
    );`);
    this.addSql(`create trigger "search_project_terms_variants_insert" after insert on "search_project_terms"
      referencing new table as new_terms for each statement execute function search_terms_variants();`);
    // As the index's vocabularyTerm: 4 to 40 characters, a letter, no dot, underscore or hyphen.
    this.addSql(`insert into "search_project_terms" ("project_id", "term")
      select distinct d.project_id, t.term from search_documents d,
        lateral (select substr(u.lexeme, length(search_project_key(d.project_id)) + 2) as term from unnest(d.scoped_document) u
                 where starts_with(u.lexeme, search_project_key(d.project_id) || ':')) t
      where length(t.term) between 4 and 40 and t.term ~ '[[:alpha:]]' and t.term !~ '[._-]'
      on conflict do nothing;`);
  }

  override down(): void {
    this.addSql('drop table if exists "search_project_terms";');
  }
}
