import { Migration } from '@mikro-orm/migrations';

/**
 * Tag counts kept per project too, as the other counts are: a search that sees an owner's documents
 * only in the projects shared with the searcher can then count their tags from search_tag_counts,
 * instead of gathering and unnesting every visible document's tags.
 */
export class Migration20261207080000_search_tag_counts_by_project extends Migration {
  override name = 'Migration20261207080000_search_tag_counts_by_project';

  override up(): void {
    this.addSql('drop table if exists "search_tag_counts";');
    this.addSql(`create table "search_tag_counts" (
      "owner_id" uuid not null,
      "deleted" boolean not null,
      "project_id" uuid not null,
      "tag" text not null,
      "documents" integer not null,
      primary key ("owner_id", "deleted", "project_id", "tag")
    );`);
    this.addSql(countFunction(true));
    this.addSql(`insert into search_tag_counts (owner_id, deleted, project_id, tag, documents)
      select owner_id, deleted, project_id, tag, count(*) from search_documents, unnest(tags) as tag group by 1, 2, 3, 4;`);
  }

  override down(): void {
    this.addSql('drop table if exists "search_tag_counts";');
    this.addSql(`create table "search_tag_counts" (
      "owner_id" uuid not null,
      "deleted" boolean not null,
      "tag" text not null,
      "documents" integer not null,
      primary key ("owner_id", "deleted", "tag")
    );`);
    this.addSql(countFunction(false));
    this.addSql(`insert into search_tag_counts (owner_id, deleted, tag, documents)
      select owner_id, deleted, tag, count(*) from search_documents, unnest(tags) as tag group by 1, 2, 3;`);
  }
}

/**
 * The statement trigger function that keeps search_counts and search_tag_counts (as
 * Migration20261123011128_search_scoped made it), with tag counts per project or not.
 */
function countFunction(tagsByProject: boolean): string {
  const tagKey = tagsByProject ? 'owner_id, deleted, project_id, tag' : 'owner_id, deleted, tag';
  const tagGroups = tagsByProject ? '1, 2, 3, 4' : '1, 2, 3';
  const apply = (rows: string) => `
      perform pg_advisory_xact_lock(k) from (
        select distinct hashtextextended('search-counts:' || owner_id::text, 0) as k from (${rows}) changes order by 1) owners;
      insert into search_counts as c (owner_id, deleted, kind, format, method, project_id, has_ligand, documents)
      select owner_id, deleted, kind, coalesce(format, ''), coalesce(method, ''), project_id, has_ligand, sum(change)::integer
      from (${rows}) changes
      group by 1, 2, 3, 4, 5, 6, 7 having sum(change) <> 0 order by 1, 2, 3, 4, 5, 6, 7
      on conflict (owner_id, deleted, kind, format, method, project_id, has_ligand) do update set documents = c.documents + excluded.documents;
      insert into search_tag_counts as c (${tagKey}, documents)
      select ${tagKey}, sum(change)::integer
      from (${rows}) changes, unnest(changes.tags) as tag
      group by ${tagGroups} having sum(change) <> 0 order by ${tagGroups}
      on conflict (${tagKey}) do update set documents = c.documents + excluded.documents;`;
  const columns = 'owner_id, deleted, kind, format, method, project_id, has_ligand, tags';
  return `create or replace function "search_documents_count"() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then${apply(`select ${columns}, 1 as change from new_rows`)}
      elsif tg_op = 'UPDATE' then${apply(`select ${columns}, 1 as change from new_rows union all select ${columns}, -1 from old_rows`)}
      else${apply(`select ${columns}, -1 as change from old_rows`)}
      end if;
      return null;
    end $$;`;
}
