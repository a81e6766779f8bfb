import { Migration } from '@mikro-orm/migrations';

/** A timestamptz as `Date.toISOString()` writes it (UTC, milliseconds, truncated as the pg driver reads them). */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The current version as a card shows it; GET /v1/structures/:id adds its validation warnings. */
const version = (warnings: boolean) => `json_build_object(
      'number', cv.number, 'format', cv.format, 'size', coalesce(cb.size, 0), 'sha256', cv.blob_sha256, 'filename', cv.filename,
      'message', cv.message, 'author', cv.author_id, 'pinned', cv.pinned, 'createdAt', ${iso('cv.created_at')}, 'summary', cv.summary
      ${warnings ? `, 'warnings', coalesce(cv.validation->'warnings', '[]'::jsonb)` : ''})`;

/**
 * Structure cards: a structure as the API shows it (serializeStructure's fields, but for the view and
 * download counts, which change on every read and are added when shown), kept as JSON text.
 *
 * bench:search measured building the 50 cards of a results page in each search (three joins and a
 * json_build_object with four to_char per structure) at 40% of the whole request, Postgres and API
 * together. Now `structure_card(id)` builds a card in one place, triggers keep `structure_cards` up to
 * date with every change to a structure or its current version, and a search reads one row per hit.
 * Hand-written: the table belongs to search presentation, not to a MikroORM entity.
 */
export class Migration20261123070000_structure_cards extends Migration {
  override name = 'Migration20261123070000_structure_cards';

  override up(): void {
    this.addSql(`create function "structure_card"("structure" uuid, "with_warnings" boolean default false) returns text language sql stable parallel safe
      as $$ select json_build_object(
        'id', cs.id, 'projectId', cs.project_id, 'name', cs.name, 'description', cs.description, 'kind', cs.kind,
        'tags', cs.tags, 'metadata', cs.metadata,
        'currentVersion', case when cv.id is null then null when "with_warnings" then ${version(true)} else ${version(false)} end,
        'createdAt', ${iso('cs.created_at')}, 'updatedAt', ${iso('cs.updated_at')}, 'deletedAt', ${iso('cs.deleted_at')})::text
      from structures cs
      left join structure_versions cv on cv.id = cs.current_version_id
      left join blobs cb on cb.sha256 = cv.blob_sha256
      where cs.id = "structure" $$;`);
    // A card is kept as its members: its JSON text without the opening brace, so the counts go in
    // front by concatenation alone (cutting a character off 50 cards' text cost a tenth of a millisecond a search).
    this.addSql(`create table "structure_cards" (
      "structure_id" uuid not null primary key references "structures" ("id") on delete cascade,
      "members" text not null);`);
    this.addSql(`create function "structure_card_members"("structure" uuid) returns text language sql stable parallel safe
      as $$ select substr(structure_card("structure"), 2) $$;`);
    this.addSql(`create function "structure_cards_refresh"() returns trigger language plpgsql as $$
      begin
        insert into structure_cards (structure_id, members) values (new.id, structure_card_members(new.id))
          on conflict (structure_id) do update set members = excluded.members;
        return null;
      end $$;`);
    // Every column a card shows but the counts: counting a view or a download leaves the card alone.
    this.addSql(`create trigger "structure_cards_on_structure" after insert or update of
        project_id, name, description, kind, tags, metadata, current_version_id, created_at, updated_at, deleted_at
      on "structures" for each row execute function structure_cards_refresh();`);
    this.addSql(`create function "structure_cards_refresh_version"() returns trigger language plpgsql as $$
      begin
        update structure_cards c set members = structure_card_members(c.structure_id)
          from structures s where s.id = new.structure_id and s.current_version_id = new.id and c.structure_id = s.id;
        return null;
      end $$;`);
    this.addSql(`create trigger "structure_cards_on_version" after update of
        number, format, blob_sha256, filename, message, author_id, pinned, created_at, summary
      on "structure_versions" for each row when (old is distinct from new) execute function structure_cards_refresh_version();`);
    this.addSql('insert into "structure_cards" ("structure_id", "members") select "id", structure_card_members("id") from "structures";');
  }

  override down(): void {
    this.addSql('drop trigger if exists "structure_cards_on_version" on "structure_versions";');
    this.addSql('drop trigger if exists "structure_cards_on_structure" on "structures";');
    this.addSql('drop function if exists "structure_cards_refresh_version"();');
    this.addSql('drop function if exists "structure_cards_refresh"();');
    this.addSql('drop table if exists "structure_cards";');
    this.addSql('drop function if exists "structure_card_members"(uuid);');
    this.addSql('drop function if exists "structure_card"(uuid, boolean);');
  }
}
