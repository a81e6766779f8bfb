import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { connectOrm, migrate } from '../../src/db/orm.js';
import { dropDatabase, ensureDatabase, withDatabase } from '../../src/runtime/postgres.js';

/**
 * A migrated database of the test file's own, on the run's server: for tests that count every
 * row (or drop the database) and so cannot share the run's database with other files.
 */
export async function ownDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const url = withDatabase(inject('databaseUrl'), `molvault_test_${inject('runId')}_${label}_${randomBytes(2).toString('hex')}`);
  await ensureDatabase(url);
  const orm = await connectOrm(url);
  try {
    await migrate(orm);
  } finally {
    await orm.close();
  }
  return { url, drop: () => dropDatabase(url) };
}
