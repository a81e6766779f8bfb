import type { Migration } from '@mikro-orm/migrations';

/** A migration class by the name it is recorded under (its file's name without the extension). */
export interface ListedMigration {
  name: string;
  class: new (...args: any[]) => Migration;
}

let listed: ListedMigration[] | undefined;

/**
 * The build (bin/build.mjs) compiles the migrations into itself and hands them over here before
 * anything connects; from the sources, MikroORM finds them as files in migrations/ instead.
 */
export function useMigrationList(migrations: ListedMigration[]): void {
  listed = migrations;
}

export function migrationList(): ListedMigration[] | undefined {
  return listed;
}
