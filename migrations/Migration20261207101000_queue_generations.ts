import { Migration } from '@mikro-orm/migrations';

/**
 * The generation mark each queue prefix's Redis holds, as Postgres last saw it. A Redis that lost
 * its data (FLUSHALL, a restart without persistence) has lost the mark too, and Postgres's memory of
 * it is what tells such a Redis from one that was never used: then reconcile re-adds every job at
 * once instead of waiting RECONCILE_AFTER_MS (services/maintenance/redisGeneration.ts).
 */
export class Migration20261207101000_queue_generations extends Migration {
  override name = 'Migration20261207101000_queue_generations';

  override up(): void {
    this.addSql(`create table "queue_generations" (
      "queue_prefix" text not null primary key,
      "generation" text not null,
      "recorded_at" timestamptz not null default now()
    );`);
  }

  override down(): void {
    this.addSql('drop table if exists "queue_generations";');
  }
}
