import { Migration } from '@mikro-orm/migrations';

/** A timestamptz as `Date.toISOString()` writes it (UTC, milliseconds, truncated as the pg driver reads them). */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The current version as a card shows it; GET /v1/structures/:id adds its validation warnings. */
const version = (warnings: boolean) => `json_build_object(
      'number', cv.number, 'format', cv.format, 'size', coalesce(cb.size, 0), 'sha256', cv.blob_sha256, 'filename', cv.filename,
      'message', cv.message, 'author', cv.author_id, 'pinned', cv.pinned, 'createdAt', ${iso('cv.created_at')}, 'summary', cv.summary
      ${warnings ? `, 'warnings', coalesce(cv.validation->'warnings', '[]'::jsonb)` : ''})`;

/**
 * structure_card as PL/pgSQL, with the same result: a SQL function that is not inlined is planned
 * again on every call from a trigger, and bench:import measured that at 0.35 ms of Postgres time
 * per stored file (two cards each); PL/pgSQL keeps its plan for the session. And a structure gets
 * its card once it has a current version: until then (inside the transaction that stores its first
 * version) a search shows it from a card built on the spot, which a kept card is not needed for.
 */
export class Migration20261123080000_structure_card_plans extends Migration {
  override name = 'Migration20261123080000_structure_card_plans';

  override up(): void {
    this.addSql(`create or replace function "structure_card"("structure" uuid, "with_warnings" boolean default false) returns text
      language plpgsql stable parallel safe as $$
      begin
        return (select json_build_object(
          'id', cs.id, 'projectId', cs.project_id, 'name', cs.name, 'description', cs.description, 'kind', cs.kind,
          'tags', cs.tags, 'metadata', cs.metadata,
          'currentVersion', case when cv.id is null then null when "with_warnings" then ${version(true)} else ${version(false)} end,
          'createdAt', ${iso('cs.created_at')}, 'updatedAt', ${iso('cs.updated_at')}, 'deletedAt', ${iso('cs.deleted_at')})::text
        from structures cs
        left join structure_versions cv on cv.id = cs.current_version_id
        left join blobs cb on cb.sha256 = cv.blob_sha256
        where cs.id = "structure");
      end $$;`);
    this.addSql('drop trigger if exists "structure_cards_on_structure" on "structures";');
    this.addSql(`create trigger "structure_cards_on_structure_insert" after insert on "structures"
      for each row when (new.current_version_id is not null) execute function structure_cards_refresh();`);
    this.addSql(`create trigger "structure_cards_on_structure_update" after update of
        project_id, name, description, kind, tags, metadata, current_version_id, created_at, updated_at, deleted_at
      on "structures" for each row execute function structure_cards_refresh();`);
  }

  // structure_card keeps its PL/pgSQL body on the way down: the same results either way.
  override down(): void {
    this.addSql('drop trigger if exists "structure_cards_on_structure_update" on "structures";');
    this.addSql('drop trigger if exists "structure_cards_on_structure_insert" on "structures";');
    this.addSql(`create trigger "structure_cards_on_structure" after insert or update of
        project_id, name, description, kind, tags, metadata, current_version_id, created_at, updated_at, deleted_at
      on "structures" for each row execute function structure_cards_refresh();`);
  }
}
