/**
 * A filter on a blob reaches every source of references through that source's blob index. Postgres
 * pushes a filter into the branches of a `union all` only for a column of one type in every branch:
 * one text column among varchar(64) ones made every lookup by blob (whether an owner is charged for
 * it, garbage collection's "still referenced") read all of the owner's, or everyone's, references.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { allBlobReferencesSql, BLOB_REFERENCE_SOURCES } from '../src/services/quota/blobReferences.js';

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client(inject('databaseUrl'));
  await client.connect();
});
afterAll(async () => {
  await client.end();
});

describe('blob references', () => {
  it('every source gives its blob hash as the same type', async () => {
    const types = new Map<string, number>();
    for (const source of BLOB_REFERENCE_SOURCES) {
      const result = await client.query(`select blob_sha256 from (${source.sql}) s limit 0`);
      types.set(source.name, result.fields[0].dataTypeID);
    }
    expect(new Set(types.values()).size, JSON.stringify(Object.fromEntries(types))).toBe(1);
  });

  it("a lookup by blob goes to structure_versions' blob index", async () => {
    await client.query('begin');
    try {
      await client.query('set local enable_seqscan = off');
      const [{ 'QUERY PLAN': plan }] = (
        await client.query(`explain (format json) select 1 from (${allBlobReferencesSql()}) refs where refs.blob_sha256 = $1 and refs.owner_id = $2`, [
          'a'.repeat(64),
          '00000000-0000-0000-0000-000000000001',
        ])
      ).rows;
      expect(JSON.stringify(plan)).toContain('structure_versions_blob_sha256_index');
    } finally {
      await client.query('rollback');
    }
  });
});
