import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { entities } from '../entities/index.js';
import type { Logger } from '../lib/logger.js';
import { migrationList } from './migrationList.js';

export type Orm = MikroORM;
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

export function ormOptions(databaseUrl: string, log?: Logger): Options {
  return {
    driver: PostgreSqlDriver,
    clientUrl: databaseUrl,
    entities,
    extensions: [Migrator],
    pool: { min: 0, max: 20 },
    debug: false,
    // Contexts are forked explicitly per request and per job.
    allowGlobalContext: false,
    forceUtcTimezone: true,
    logger: (message) => log?.debug({ orm: message }),
    // search_documents (and its tag index), search_terms, search_project_terms, search_lexemes and the search counts belong to the Postgres search index (raw SQL), not to entities;
    // so do their functions and triggers, and those that keep structures' cards (structures.card_members, kept by triggers
    // on structures and structure_versions), which a schema diff must not offer to drop.
    schemaGenerator: {
      skipTables: ['search_documents', 'search_document_tags', 'search_terms', 'search_project_terms', 'search_lexemes', 'search_counts', 'search_tag_counts'],
      ignoreRoutines: true,
      ignoreTriggers: true,
    },
    migrations: {
      // The build carries no migrations/ folder, and never writes the schema snapshot (migration:create runs from the sources).
      ...(migrationList() ? { migrationsList: migrationList(), snapshot: false } : { path: MIGRATIONS_DIR, glob: '!(*.d).{js,ts}', snapshot: true }),
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      emit: 'ts',
      snapshotName: '.snapshot-molvault',
    },
  };
}

export async function connectOrm(databaseUrl: string, log?: Logger): Promise<Orm> {
  return MikroORM.init(ormOptions(databaseUrl, log));
}

/** Applies pending migrations; returns the names of those applied. */
export async function migrate(orm: Orm): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((m) => m.name);
}

/** What `molvault migrate` reports: what it applied now, and how many are applied in all. */
export async function migrateReport(orm: Orm): Promise<{ applied: string[]; appliedInAll: number; message: string }> {
  const applied = await migrate(orm);
  const appliedInAll = (await orm.migrator.getExecuted()).length;
  const message = applied.length
    ? `applied ${applied.length} migration${applied.length > 1 ? 's' : ''}; ${appliedInAll} applied in all`
    : `already up to date: ${appliedInAll} migrations applied, none pending (molvault start and the other server commands migrate on their own)`;
  return { applied, appliedInAll, message };
}
