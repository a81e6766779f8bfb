import { Migration } from '@mikro-orm/migrations';

/**
 * Sharing: teams and their members, project members with roles (a user or a team each), and
 * tokens limited by scope and to projects. Every existing project's owner becomes its first owner
 * member, as a new project's creator does.
 */
export class Migration20261207010000_sharing extends Migration {
  override name = 'Migration20261207010000_sharing';

  override up(): void {
    this.addSql(`create table "teams" (
      "id" uuid not null primary key,
      "name" varchar(255) not null,
      "created_by_id" uuid null references "users" ("id") on delete set null,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null
    );`);
    this.addSql(`create table "team_members" (
      "id" uuid not null primary key,
      "team_id" uuid not null references "teams" ("id") on delete cascade,
      "user_id" uuid not null references "users" ("id") on delete cascade,
      "role" text not null check ("role" in ('member', 'maintainer')),
      "created_at" timestamptz not null,
      unique ("team_id", "user_id")
    );`);
    this.addSql('create index "team_members_user_id_index" on "team_members" ("user_id");');
    this.addSql(`create table "project_members" (
      "id" uuid not null primary key,
      "project_id" uuid not null references "projects" ("id") on delete cascade,
      "user_id" uuid null references "users" ("id") on delete cascade,
      "team_id" uuid null references "teams" ("id") on delete cascade,
      "role" text not null check ("role" in ('viewer', 'editor', 'owner')),
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      check (("user_id" is null) <> ("team_id" is null)),
      unique ("project_id", "user_id"),
      unique ("project_id", "team_id")
    );`);
    this.addSql('create index "project_members_user_id_index" on "project_members" ("user_id") include ("project_id", "role");');
    this.addSql('create index "project_members_team_id_index" on "project_members" ("team_id") include ("project_id", "role");');
    this.addSql(`insert into "project_members" ("id", "project_id", "user_id", "role", "created_at", "updated_at")
      select gen_random_uuid(), "id", "owner_id", 'owner', "created_at", now() from "projects";`);
    this.addSql(`alter table "api_tokens" add column "scopes" text[] null, add column "project_ids" uuid[] null;`);
  }

  override down(): void {
    this.addSql('alter table "api_tokens" drop column "scopes", drop column "project_ids";');
    this.addSql('drop table if exists "project_members";');
    this.addSql('drop table if exists "team_members";');
    this.addSql('drop table if exists "teams";');
  }
}
