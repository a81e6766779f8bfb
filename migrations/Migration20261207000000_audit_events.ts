import { Migration } from '@mikro-orm/migrations';

/**
 * The audit log: append-only. Updates are refused outright; deletes only inside a transaction that
 * set `molvault.audit_retention` (the retention step), so no route or stray statement can rewrite
 * history.
 */
export class Migration20261207000000_audit_events extends Migration {
  override name = 'Migration20261207000000_audit_events';

  override up(): void {
    this.addSql(`create table "audit_events" (
      "id" uuid not null primary key,
      "created_at" timestamptz not null default now(),
      "action" text not null,
      "actor_user_id" uuid null,
      "actor_token_id" uuid null,
      "actor_link_id" text null,
      "target_type" text not null,
      "target_id" text null,
      "project_id" uuid null,
      "ip" text null,
      "user_agent" text null,
      "details" jsonb not null default '{}'::jsonb
    );`);
    this.addSql(`create index "audit_events_project_id_created_at_index" on "audit_events" ("project_id", "created_at" desc, "id" desc);`);
    this.addSql(`create index "audit_events_created_at_index" on "audit_events" ("created_at" desc, "id" desc);`);
    this.addSql(`create function audit_events_append_only() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' and coalesce(current_setting('molvault.audit_retention', true), '') = 'on' then
          return old;
        end if;
        raise exception 'audit events are append-only';
      end $$;`);
    this.addSql(`create trigger "audit_events_append_only" before update or delete on "audit_events"
      for each row execute function audit_events_append_only();`);
  }

  override down(): void {
    this.addSql('drop table if exists "audit_events";');
    this.addSql('drop function if exists audit_events_append_only();');
  }
}
