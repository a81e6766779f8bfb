import { Migration } from '@mikro-orm/migrations';

/** A timestamptz as `Date.toISOString()` writes it (UTC, milliseconds, truncated as the pg driver reads them). */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The current version as a card shows it (as structure_card builds it without warnings). */
const version = `json_build_object(
      'number', cv.number, 'format', cv.format, 'size', coalesce(cb.size, 0), 'sha256', cv.blob_sha256, 'filename', cv.filename,
      'message', cv.message, 'author', cv.author_id, 'pinned', cv.pinned, 'createdAt', ${iso('cv.created_at')}, 'summary', cv.summary)`;

/** The columns a card shows, but for the view and download counts (counting them leaves the card alone). */
const CARD_COLUMNS = 'project_id, name, description, kind, tags, metadata, current_version_id, created_at, updated_at, deleted_at';

/**
 * Each structure keeps its card in its own row (`structures.card_members`, the card's JSON text
 * without the opening brace) instead of in structure_cards. A search hit reads its structure's row
 * anyway (for the owner check and the counts), and the second lookup, by structure_cards' primary
 * key, was a ninth of Postgres's time per search (bench:search: 1.60 → 1.41 ms of Postgres CPU per
 * query, run one at a time over the query mix).
 *
 * A BEFORE trigger builds the card from the row being written (`structure_card_members_of`, the
 * same JSON as structure_card builds from the table), so the row is written once; a change to the
 * current version rewrites it from structure_versions' trigger. A structure without a current
 * version has no card: a search builds one on the spot.
 */
export class Migration20261123090000_structure_card_column extends Migration {
  override name = 'Migration20261123090000_structure_card_column';

  override up(): void {
    this.addSql('alter table "structures" add column "card_members" text null;');
    // Inline and uncompressed unless the row cannot fit otherwise: every search hit reads it.
    this.addSql('alter table "structures" alter column "card_members" set storage main;');
    this.addSql(`create function "structure_card_members_of"("s" "structures") returns text language plpgsql stable parallel safe as $$
      begin
        return (select substr(json_build_object(
          'id', s.id, 'projectId', s.project_id, 'name', s.name, 'description', s.description, 'kind', s.kind,
          'tags', s.tags, 'metadata', s.metadata,
          'currentVersion', case when cv.id is null then null else ${version} end,
          'createdAt', ${iso('s.created_at')}, 'updatedAt', ${iso('s.updated_at')}, 'deletedAt', ${iso('s.deleted_at')})::text, 2)
        from (select) one
        left join structure_versions cv on cv.id = s.current_version_id
        left join blobs cb on cb.sha256 = cv.blob_sha256);
      end $$;`);
    this.addSql(`create function "structures_card_write"() returns trigger language plpgsql as $$
      begin
        new.card_members := case when new.current_version_id is null then null else structure_card_members_of(new) end;
        return new;
      end $$;`);
    this.addSql(`create trigger "structures_card_on_insert" before insert on "structures"
      for each row when (new.current_version_id is not null) execute function structures_card_write();`);
    this.addSql(`create trigger "structures_card_on_update" before update of ${CARD_COLUMNS}
      on "structures" for each row execute function structures_card_write();`);
    this.addSql(`create or replace function "structure_cards_refresh_version"() returns trigger language plpgsql as $$
      begin
        update structures s set card_members = structure_card_members_of(s)
          where s.id = new.structure_id and s.current_version_id = new.id;
        return null;
      end $$;`);
    this.addSql('drop trigger if exists "structure_cards_on_structure_update" on "structures";');
    this.addSql('drop trigger if exists "structure_cards_on_structure_insert" on "structures";');
    this.addSql('drop function if exists "structure_cards_refresh"();');
    this.addSql('drop table if exists "structure_cards";');
    this.addSql(`update "structures" s set "card_members" = structure_card_members_of(s) where "current_version_id" is not null;`);
  }

  override down(): void {
    this.addSql('drop trigger if exists "structures_card_on_update" on "structures";');
    this.addSql('drop trigger if exists "structures_card_on_insert" on "structures";');
    this.addSql('drop function if exists "structures_card_write"();');
    this.addSql(`create table "structure_cards" (
      "structure_id" uuid not null primary key references "structures" ("id") on delete cascade,
      "members" text not null);`);
    this.addSql(`create function "structure_cards_refresh"() returns trigger language plpgsql as $$
      begin
        insert into structure_cards (structure_id, members) values (new.id, structure_card_members(new.id))
          on conflict (structure_id) do update set members = excluded.members;
        return null;
      end $$;`);
    this.addSql(`create trigger "structure_cards_on_structure_insert" after insert on "structures"
      for each row when (new.current_version_id is not null) execute function structure_cards_refresh();`);
    this.addSql(`create trigger "structure_cards_on_structure_update" after update of ${CARD_COLUMNS}
      on "structures" for each row execute function structure_cards_refresh();`);
    this.addSql(`create or replace function "structure_cards_refresh_version"() returns trigger language plpgsql as $$
      begin
        update structure_cards c set members = structure_card_members(c.structure_id)
          from structures s where s.id = new.structure_id and s.current_version_id = new.id and c.structure_id = s.id;
        return null;
      end $$;`);
    this.addSql(
      'insert into "structure_cards" ("structure_id", "members") select "id", structure_card_members("id") from "structures" where "current_version_id" is not null;',
    );
    this.addSql('drop function if exists "structure_card_members_of"("structures");');
    this.addSql('alter table "structures" drop column "card_members";');
  }
}
