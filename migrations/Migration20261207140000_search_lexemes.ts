import { Migration } from '@mikro-orm/migrations';

/**
 * Every keyed lexeme the search index holds (search_lexemes), so that a searched word's prefix can be
 * turned into the exact lexemes of the searched owner or project that start with it. The GIN index
 * answers a prefix (`'key:word':*`) by gathering every matching entry's documents into a bitmap first,
 * several times slower than reading exact entries, which it intersects as it goes (two words: the
 * difference is largest). The table only ever holds more than the documents do: a lexeme no document
 * holds any longer finds nothing, so nothing is removed when documents change or go.
 *  - Kept by a statement trigger on search_documents, whoever writes the documents, in the writer's
 *    own transaction: a search sees a document only with its lexemes.
 *  - Collated "C": its order is byte order, the order in which a tsquery prefix matches (memcmp).
 *  - search_find_items(key, word): the exact lexemes under `key` starting with `word`, as tsquery
 *    text; the prefix itself when there are more than 16 (one bitmap then costs less than many
 *    entries); an exact lexeme nothing holds when there are none. Tokens hold only letters, digits,
 *    dots, underscores and hyphens, never U+10FFFF, so every lexeme starting with a prefix sorts before
 *    the prefix followed by it.
 *  - search_find_query(key, query): the words' query for `key`, its prefixes (each between two
 *    chr(30)) made exact, its exact lexemes (each after a chr(31)) keyed (postgres.ts builds the text).
 * Hand-written: it belongs to the Postgres search index, not to MikroORM entities.
 */
export class Migration20261207140000_search_lexemes extends Migration {
  override name = 'Migration20261207140000_search_lexemes';

  override up(): void {
    this.addSql(`create table "search_lexemes" ("lexeme" text collate "C" not null primary key);`);
    this.addSql(`create function "search_lexemes_insert"() returns trigger language plpgsql as $$
    begin
      insert into search_lexemes (lexeme)
      select distinct u.lexeme from new_rows d, unnest(d.scoped_document) u order by 1
      on conflict do nothing;
      return null;
    end $$;`);
    this.addSql(`create trigger "search_documents_lexemes_insert" after insert on "search_documents"
      referencing new table as new_rows for each statement execute function search_lexemes_insert();`);
    this.addSql(`create trigger "search_documents_lexemes_update" after update on "search_documents"
      referencing new table as new_rows for each statement execute function search_lexemes_insert();`);
    this.addSql(`insert into search_lexemes (lexeme)
      select distinct u.lexeme from search_documents d, unnest(d.scoped_document) u order by 1
      on conflict do nothing;`);
    this.addSql(`create function "search_find_items"("key" text, "word" text) returns text language sql stable parallel safe as $$
      select case when count(*) = 0 then quote_literal("key" || ':' || "word")
                  when count(*) > 16 then quote_literal("key" || ':' || "word") || ':*'
                  else '(' || string_agg(quote_literal(l.lexeme), ' | ') || ')' end
      from (select s.lexeme from search_lexemes s
            where s.lexeme >= ("key" || ':' || "word") collate "C" and s.lexeme < ("key" || ':' || "word" || chr(1114111)) collate "C"
            order by s.lexeme limit 17) l $$;`);
    this.addSql(`create function "search_find_query"("key" text, "query" text) returns text language sql stable parallel safe as $$
      select string_agg(case when u.n % 2 = 1 then replace(u.part, chr(31), "key" || ':') else search_find_items("key", u.part) end, '' order by u.n)
      from unnest(string_to_array("query", chr(30))) with ordinality as u(part, n) $$;`);
  }

  override down(): void {
    this.addSql('drop function if exists "search_find_query"(text, text);');
    this.addSql('drop function if exists "search_find_items"(text, text);');
    this.addSql('drop trigger if exists "search_documents_lexemes_update" on "search_documents";');
    this.addSql('drop trigger if exists "search_documents_lexemes_insert" on "search_documents";');
    this.addSql('drop function if exists "search_lexemes_insert"();');
    this.addSql('drop table if exists "search_lexemes";');
  }
}
