import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../bin/molvault.js');

async function molvault(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'warn', TYPESENSE_URL: '', ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('molvault reindex', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.stop());

  it('rebuilds the index from Postgres with progress on stderr, and searches find the same', async () => {
    const user = await userFactory(stack.ctx);
    const api = client(stack.url, user.token);
    const project = (await api.post('/v1/projects', { name: 'reindexed' })).body.id;
    const bytes = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const stored = await api.upload(
      `/v1/projects/${project}/structures`,
      { name: '1crn.pdb', content: bytes },
      { name: 'Reindexed crambin' },
      { prefer: 'wait=30' },
    );
    expect(stored.status).toBe(201);
    const before = (await api.get('/v1/search?q=reindexed&facets=kind')).body;
    expect(before.total).toBe(1);

    await stack.ctx.orm.em.fork().execute('delete from search_documents where structure_id = ?', [stored.body.structure.id]);
    expect((await api.get('/v1/search?q=reindexed')).body.total).toBe(0);

    const result = await molvault(['reindex']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const [{ n }] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from structures');
    expect(report).toMatchObject({ backend: 'postgres', documents: Number(n) });
    // Not a terminal here: plain progress lines, ending at 100%.
    expect(result.stderr).toMatch(/reindexing into postgres: \d+\/\d+ \(100%/);
    expect(result.stderr).not.toContain('\r');
    const after = (await api.get('/v1/search?q=reindexed&facets=kind')).body;
    expect(after.items.map((i: { structure: { id: string } }) => i.structure.id)).toEqual([stored.body.structure.id]);
    expect(after.facets).toEqual(before.facets);
  });

  it('explains a backend it cannot use', async () => {
    const typesense = await molvault(['reindex', '--backend', 'typesense']);
    expect(typesense.code).toBe(2);
    expect(typesense.stderr).toContain('TYPESENSE_URL');
    const unknown = await molvault(['reindex', '--backend', 'solr']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('postgres or typesense');
  });
});
