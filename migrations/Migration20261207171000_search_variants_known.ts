import { Migration } from '@mikro-orm/migrations';

/**
 * The deletion variants of a vocabulary's new terms (search_terms_variants, fired by inserts into
 * search_terms and search_project_terms) are made only for terms the global variants table does not
 * hold yet. Both vocabularies take the same word when a document is indexed, and a word new to a
 * project is mostly known already, so most of the trigger's work was making a term's variants again
 * (up to 821 strings for a 40-letter word) only for every one to meet `on conflict do nothing`.
 *  - A term's variants always include the term itself, and they go in together (one statement) and
 *    go out together (a rebuild deletes them all): the row (term, term) stands for all of them.
 *  - That row is locked (for key share) as it is found: a rebuild deleting the variants meanwhile
 *    makes the trigger wait for it, and then make the term's variants itself, as before. (An index
 *    write that also waits for the rebuild elsewhere can deadlock with it, as writes and a rebuild
 *    already could through the project locks: Postgres ends one, and the index job is retried.)
 * Hand-written: it belongs to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261207171000_search_variants_known extends Migration {
  override name = 'Migration20261207171000_search_variants_known';

  override up(): void {
    this.addSql(`create or replace function "search_terms_variants"() returns trigger language plpgsql as $$
    begin
      with known as (
        select x.term from search_term_variants x
        where x.variant in (select term from new_terms) and x.term = x.variant
        for key share of x)
      insert into "search_term_variants" ("variant", "term")
      select distinct v, n.term from (select distinct term from new_terms except select term from known) n,
        unnest(search_typo_variants(n.term, case when length(n.term) >= 8 then 2 else 1 end)) as v
      order by 1, 2 on conflict do nothing;
      return null;
    end $$;`);
  }

  override down(): void {
    this.addSql(`create or replace function "search_terms_variants"() returns trigger language plpgsql as $$
    begin
      insert into "search_term_variants" ("variant", "term")
      select distinct v, n.term from (select distinct term from new_terms) n,
        unnest(search_typo_variants(n.term, case when length(n.term) >= 8 then 2 else 1 end)) as v
      order by 1, 2 on conflict do nothing;
      return null;
    end $$;`);
  }
}
