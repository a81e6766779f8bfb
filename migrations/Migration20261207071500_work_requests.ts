import { Migration } from '@mikro-orm/migrations';

/**
 * Conversions and diffs a client asked for and may still wait for. Their results live in Postgres
 * (derivations, version_diffs) but, until they exist, the work lived only as a job in Redis: a
 * Redis restarted empty lost it, and the job URL the client was given answered 404. A row here is
 * the job's contract data, so reconcile (and GET /v1/jobs/:id) can add the job back under its id.
 */
export class Migration20261207071500_work_requests extends Migration {
  override name = 'Migration20261207071500_work_requests';

  override up(): void {
    // Keyed by queue prefix too: the job ids are deterministic (one per content), and a request
    // belongs to the deployment whose queues took it, which is the one whose reconcile adds it back.
    this.addSql(`create table "work_requests" (
      "queue_prefix" text not null,
      "job_id" text not null,
      "kind" text not null,
      "data" jsonb not null,
      "requested_at" timestamptz not null default now(),
      "asked_at" timestamptz not null default now(),
      primary key ("queue_prefix", "job_id")
    );`);
    this.addSql('create index "work_requests_asked_at_index" on "work_requests" ("asked_at");');
  }

  override down(): void {
    this.addSql('drop table if exists "work_requests";');
  }
}
