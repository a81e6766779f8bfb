import { Migration } from '@mikro-orm/migrations';

/**
 * When each maintenance task (reconcile) last finished, whoever ran it: the schedule in Redis or a
 * worker's watchdog. Postgres keeps it, so a watchdog can tell "none ran lately" even after Redis
 * lost every schedule and every job.
 */
export class Migration20261207070000_maintenance_runs extends Migration {
  override name = 'Migration20261207070000_maintenance_runs';

  override up(): void {
    this.addSql(`create table "maintenance_runs" (
      "name" text not null primary key,
      "finished_at" timestamptz not null,
      "finished_by" text null
    );`);
  }

  override down(): void {
    this.addSql('drop table if exists "maintenance_runs";');
  }
}
