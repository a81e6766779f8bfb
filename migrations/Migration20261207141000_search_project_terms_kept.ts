import { Migration } from '@mikro-orm/migrations';

/**
 * Each project's vocabulary (search_project_terms) kept by statement triggers on search_documents,
 * whoever writes the documents: a document's project-keyed words go in when it is written, and a word
 * a document loses (changed, moved to another project, removed) goes out of its project's vocabulary
 * once no document of the project holds it. A stale word decided whether a member's word was taken as
 * typed and which corrections they were offered, by documents gone from the project (a structure moved
 * to a project the member cannot see kept its words in the one they can).
 *  - Whether a project's document holds a word: its project-keyed lexeme, looked up in the GIN index.
 *  - Words are added and removed under a lock per project (advisory, taken in project order), so a word
 *    being removed and the same word arriving in another transaction cannot cross: the remover checks
 *    the documents only once the adder has committed, or the adder inserts after the removal.
 *  - A document written without change to its words removes nothing and checks nothing.
 *  - The triggers fire before the count triggers (Postgres fires a table's triggers for one event in
 *    name order): a writer then waits for a rebuild's emptied vocabulary before it holds any count row
 *    the rebuild's recount waits for, as when the words went in with the documents' statement.
 * Hand-written: it belongs to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261207141000_search_project_terms_kept extends Migration {
  override name = 'Migration20261207141000_search_project_terms_kept';

  override up(): void {
    // As the index's vocabularyTerm (postgres.ts): 4 to 40 characters, a letter, no dot, underscore or hyphen.
    this.addSql(`create function "search_project_words"("project" uuid, "document" tsvector) returns setof text language sql immutable parallel safe as $$
      select t.term from (select substr(u.lexeme, length(search_project_key("project")) + 2) as term from unnest("document") u
                          where starts_with(u.lexeme, search_project_key("project") || ':')) t
      where length(t.term) between 4 and 40 and t.term ~ '[[:alpha:]]' and t.term !~ '[._-]' $$;`);
    // Each branch names only the transition tables its event has (plpgsql plans a statement when it first runs it).
    const lock = (rows: string) => `perform pg_advisory_xact_lock(k) from (
        select distinct hashtextextended('search-project-terms:' || r.project_id::text, 0) as k from (${rows}) r order by 1) projects;`;
    const add = `insert into search_project_terms (project_id, term)
        select distinct n.project_id, w from new_rows n, search_project_words(n.project_id, n.scoped_document) w order by 1, 2
        on conflict do nothing;`;
    const remove = (gone: string) => `delete from search_project_terms t using (${gone}) gone
        where t.project_id = gone.project_id and t.term = gone.term
          and not exists (select from search_documents d
                          where d.scoped_document @@ quote_literal(search_project_key(gone.project_id) || ':' || gone.term)::tsquery
                            and d.project_id = gone.project_id);`;
    const words = (rows: string) => `select x.project_id, w as term from ${rows} x, search_project_words(x.project_id, x.scoped_document) w`;
    this.addSql(`create function "search_project_terms_keep"() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        ${lock('select project_id from new_rows')}
        ${add}
      elsif tg_op = 'UPDATE' then
        ${lock('select project_id from new_rows union all select project_id from old_rows')}
        ${add}
        ${remove(`${words('old_rows')} except ${words('new_rows')}`)}
      else
        ${lock('select project_id from old_rows')}
        ${remove(words('old_rows'))}
      end if;
      return null;
    end $$;`);
    this.addSql(`create trigger "search_documents_before_counts_project_terms_insert" after insert on "search_documents"
      referencing new table as new_rows for each statement execute function search_project_terms_keep();`);
    this.addSql(`create trigger "search_documents_before_counts_project_terms_update" after update on "search_documents"
      referencing old table as old_rows new table as new_rows for each statement execute function search_project_terms_keep();`);
    this.addSql(`create trigger "search_documents_before_counts_project_terms_delete" after delete on "search_documents"
      referencing old table as old_rows for each statement execute function search_project_terms_keep();`);
  }

  override down(): void {
    this.addSql('drop trigger if exists "search_documents_before_counts_project_terms_delete" on "search_documents";');
    this.addSql('drop trigger if exists "search_documents_before_counts_project_terms_update" on "search_documents";');
    this.addSql('drop trigger if exists "search_documents_before_counts_project_terms_insert" on "search_documents";');
    this.addSql('drop function if exists "search_project_terms_keep"();');
    this.addSql('drop function if exists "search_project_words"(uuid, tsvector);');
  }
}
