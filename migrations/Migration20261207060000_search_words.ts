import { Migration } from '@mikro-orm/migrations';

/**
 * Words with dots, underscores and hyphens, and typos as Typesense counts them.
 *  - search_index_state: the tokenizer version the stored documents were built with. Documents are
 *    now tokenized by molvault (compounds such as "1hpv.pdb" whole and by their parts) rather than by
 *    to_tsvector; documents indexed before are rebuilt by the drift check (needsRebuild). An empty
 *    index is current already.
 *  - search_typo_variants(word, k): the word and every string made by deleting up to k of its letters.
 *    Two words within Damerau–Levenshtein distance k share one, so looking up a query word's variants
 *    among the vocabulary's (search_term_variants, global: an owner's terms are checked against
 *    search_terms) finds every term within k, which trigram similarity does not for short words.
 *    Terms of 8 letters or more carry their two-letter deletions (a word needs two typos only from 8).
 *  - search_typo_distance(a, b): Damerau–Levenshtein (optimal string alignment) distance, checked on
 *    the few candidates the variants find.
 * Hand-written: these belong to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261207060000_search_words extends Migration {
  override name = 'Migration20261207060000_search_words';

  override up(): void {
    this.addSql('create table "search_index_state" ("tokens_version" integer not null);');
    this.addSql(`insert into "search_index_state" ("tokens_version")
      select case when exists (select from "search_documents") then 1 else 2 end;`);

    this.addSql(`create function "search_typo_variants"("word" text, "deletions" integer) returns text[] language sql immutable strict parallel safe
      as $$ select array(
        select "word"
        union select overlay("word" placing '' from i for 1) from generate_series(1, length("word")) i where "deletions" >= 1
        union select overlay(overlay("word" placing '' from j for 1) placing '' from i for 1)
              from generate_series(1, length("word")) i, generate_series(i + 1, length("word")) j where "deletions" >= 2
      ) $$;`);
    this.addSql(`create function "search_typo_distance"("a" text, "b" text) returns integer language plpgsql immutable strict parallel safe as $$
    declare
      x text[] := string_to_array("a", null);
      y text[] := string_to_array("b", null);
      m integer := coalesce(array_length(x, 1), 0);
      n integer := coalesce(array_length(y, 1), 0);
      before integer[];
      previous integer[];
      current integer[];
      cost integer;
    begin
      if m = 0 then return n; end if;
      if n = 0 then return m; end if;
      previous := array_fill(0, array[n + 1], array[0]);
      for j in 0..n loop previous[j] := j; end loop;
      before := previous;
      current := previous;
      for i in 1..m loop
        current[0] := i;
        for j in 1..n loop
          cost := case when x[i] = y[j] then 0 else 1 end;
          current[j] := least(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
          if i > 1 and j > 1 and x[i] = y[j - 1] and x[i - 1] = y[j] then
            current[j] := least(current[j], before[j - 2] + 1);
          end if;
        end loop;
        before := previous;
        previous := current;
      end loop;
      return previous[n];
    end $$;`);

    this.addSql(`create table "search_term_variants" (
      "variant" text not null,
      "term" text not null,
      primary key ("variant", "term")
    );`);
    // In key order, so concurrent writers of the same variants take them in one order.
    const variantsOf = (terms: string) => `insert into "search_term_variants" ("variant", "term")
      select distinct v, n.term from (select distinct term from ${terms}) n,
        unnest(search_typo_variants(n.term, case when length(n.term) >= 8 then 2 else 1 end)) as v
      order by 1, 2 on conflict do nothing`;
    this.addSql(`create function "search_terms_variants"() returns trigger language plpgsql as $$
    begin
      ${variantsOf('new_terms')};
      return null;
    end $$;`);
    this.addSql(`create trigger "search_terms_variants_insert" after insert on "search_terms"
      referencing new table as new_terms for each statement execute function search_terms_variants();`);
    this.addSql(`${variantsOf('"search_terms"')};`);
  }

  override down(): void {
    this.addSql('drop trigger if exists "search_terms_variants_insert" on "search_terms";');
    this.addSql('drop function if exists "search_terms_variants"();');
    this.addSql('drop table if exists "search_term_variants";');
    this.addSql('drop function if exists "search_typo_distance"(text, text);');
    this.addSql('drop function if exists "search_typo_variants"(text, integer);');
    this.addSql('drop table if exists "search_index_state";');
  }
}
