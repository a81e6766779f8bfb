import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { indexTokens, queryTerms, queryWords, typosAllowed } from '../src/search/query.js';
import { reindexAll } from '../src/services/search/maintenance.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * How words are found (issue 20, items 8 and 9), on both backends through the HTTP API: names and
 * file names whose words are joined by dots, underscores and hyphens, and typos counted as Typesense
 * counts them (Damerau–Levenshtein 1 from 4 letters, 2 from 8; matches as typed first).
 */

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const typesense = loadConfig({ ...process.env, DATA_DIR: '/tmp' }).typesense;

/** Damerau–Levenshtein (optimal string alignment): the reference the SQL function is checked against. */
function osaDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[x.length][y.length];
}

describe('tokens: compounds whole and by their parts, typo allowances', () => {
  it('indexes a compound whole and by its parts, and a query of one by its parts', () => {
    expect(indexTokens('1hpv.pdb')).toEqual(['1hpv.pdb', '1hpv', 'pdb']);
    expect(indexTokens('Mn1.854Fe0.146-Guidottiite, first_200.')).toEqual([
      'mn1.854fe0.146-guidottiite',
      'mn1',
      '854fe0',
      '146',
      'guidottiite',
      'first_200',
      'first',
      '200',
    ]);
    expect(indexTokens('c-Src kinase')).toEqual(['c-src', 'c', 'src', 'kinase']);
    expect(queryTerms('pubchem.200 aspirin')).toEqual([{ whole: 'pubchem.200', parts: ['pubchem', '200'] }, { parts: ['aspirin'] }]);
    expect(queryWords('first_200')).toEqual(['first', '200']);
    expect(queryWords('a.b '.repeat(20))).toHaveLength(16);
  });

  it('allows typos by word length as Typesense does', () => {
    expect(['hme', 'heme', 'auroa', 'lysozme', 'oxgyenas'].map(typosAllowed)).toEqual([0, 1, 1, 1, 2]);
  });
});

const backends: { name: string; env: Record<string, string>; skip: boolean }[] = [
  { name: 'postgres', env: { SEARCH_BACKEND: 'postgres' }, skip: false },
  {
    name: 'typesense',
    env: { SEARCH_BACKEND: 'typesense', TYPESENSE_COLLECTION: `mvtest_${randomBytes(4).toString('hex')}` },
    skip: !typesense,
  },
];

interface Seed {
  key: string;
  name: string;
  file: string;
  fixture: string;
  description?: string;
}

const SEEDS: Seed[] = [
  { key: 'hpv', name: 'HIV-1 protease', file: '1hpv.pdb', fixture: 'ngl_1crn.pdb' },
  { key: 'pubchem', name: 'pubchem.200', file: 'library.sdf', fixture: 'chemfiles_aspirin.sdf' },
  { key: 'first', name: 'first_200', file: 'first.sdf', fixture: 'chemfiles_aspirin.sdf' },
  { key: 'guidottiite', name: 'Mn1.854Fe0.146-Guidottiite', file: 'guidottiite.sdf', fixture: 'chemfiles_aspirin.sdf' },
  { key: 'pubchemOther', name: 'pubchem compound', file: 'other.sdf', fixture: 'chemfiles_aspirin.sdf', description: 'batch 200 of the screen' },
  { key: 'aurora', name: 'Aurora kinase A', file: 'aurora.sdf', fixture: 'chemfiles_aspirin.sdf' },
  { key: 'serine', name: 'Serine protease', file: 'serine.sdf', fixture: 'chemfiles_aspirin.sdf' },
  { key: 'heme', name: 'Heme oxygenase', file: 'heme.sdf', fixture: 'chemfiles_aspirin.sdf' },
  { key: 'crystal', name: 'Ligand soak', file: 'soak.sdf', fixture: 'chemfiles_aspirin.sdf', description: 'crystal form II' },
  { key: 'crust', name: 'Crust protein', file: 'crust.sdf', fixture: 'chemfiles_aspirin.sdf' },
];

for (const backend of backends) {
  describe.skipIf(backend.skip)(`search words: ${backend.name} backend (the typesense run is skipped unless TYPESENSE_URL is set)`, () => {
    let stack: Stack;
    let api: Client;
    const id: Record<string, string> = {};

    const found = async (q: string) => {
      const response = await api.get(`/v1/search?q=${encodeURIComponent(q)}&limit=100`);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return (response.body.items as { structure: { id: string } }[]).map((i) => i.structure.id);
    };
    const keysFound = async (q: string) => {
      const byId = new Map(Object.entries(id).map(([key, value]) => [value, key]));
      return (await found(q)).map((structureId) => byId.get(structureId) ?? structureId);
    };

    beforeAll(async () => {
      stack = await startStack({ env: backend.env });
      const user = await userFactory(stack.ctx);
      api = client(stack.url, user.token);
      const project = (await api.post('/v1/projects', { name: 'words' })).body.id;
      for (const seed of SEEDS) {
        const response = await api.upload(
          `/v1/projects/${project}/structures`,
          { name: seed.file, content: await fs.readFile(path.join(FIXTURES, seed.fixture)) },
          { name: seed.name, description: seed.description ?? '' },
          { prefer: 'wait=60' },
        );
        expect(response.status, `${seed.name}: ${JSON.stringify(response.body)}`).toBe(201);
        id[seed.key] = response.body.structure.id;
      }
    });
    afterAll(() => stack?.stop());

    it('finds a structure by its file name, and by names with dots, underscores and hyphens', async () => {
      expect(await keysFound('1hpv.pdb')).toEqual(['hpv']);
      expect(await keysFound('1hpv')).toEqual(['hpv']);
      expect(await keysFound('pubchem.200')).toEqual(['pubchem', 'pubchemOther']);
      expect(await keysFound('first_200')).toEqual(['first']);
      expect(await keysFound('Guidottiite')).toEqual(['guidottiite']);
      expect(await keysFound('Mn1.854Fe0.146-Guidottiite')).toEqual(['guidottiite']);
      expect(await keysFound('guidott')).toEqual(['guidottiite']);
      expect(await keysFound('HIV-1')).toEqual(['hpv']);
    });

    it('finds one typo from 4 letters (a swap, a letter missing) and two from 8, and no more', async () => {
      expect(await keysFound('protaese')).toEqual(expect.arrayContaining(['serine', 'hpv']));
      expect(await keysFound('auroa')).toEqual(['aurora']);
      expect(await keysFound('ehme')).toEqual(['heme']);
      expect(await keysFound('oxgyenas')).toEqual(['heme']);
      // Two typos in a word under 8 letters, and any typo under 4 letters, find nothing.
      expect(await keysFound('xuxora')).toEqual([]);
      expect(await keysFound('hme')).toEqual([]);
    });

    it('ranks matches as typed (words and prefixes) before typo matches, whatever field they are in', async () => {
      // "cryst" is a prefix of "crystal" (in a description; and of "crystals" in 1crn's title, the
      // file behind "hpv") and one typo from "crust" (in a name, the heavier field): crust comes last.
      const ranked = await keysFound('cryst');
      expect(ranked).toHaveLength(3);
      expect(ranked.slice(0, 2)).toEqual(expect.arrayContaining(['crystal', 'hpv']));
      expect(ranked[2]).toBe('crust');
    });
  });
}

describe('search_typo_distance (Postgres) agrees with Damerau–Levenshtein', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ workers: false, env: { SEARCH_BACKEND: 'postgres' } });
  });
  afterAll(() => stack?.stop());

  it('on swaps, insertions, deletions, substitutions and unrelated words', async () => {
    const pairs: [string, string][] = [
      ['protease', 'protaese'],
      ['aurora', 'auroa'],
      ['heme', 'ehme'],
      ['oxygenase', 'oxgyenas'],
      ['kinase', 'kinsae'],
      ['ca', 'abc'],
      ['abc', ''],
      ['émile', 'émlie'],
    ];
    const letters = 'abcde';
    for (let n = 0; n < 200; n++) {
      const word = (length: number) => Array.from({ length }, () => letters[Math.floor(Math.random() * letters.length)]).join('');
      pairs.push([word(1 + (n % 7)), word(1 + ((n * 3) % 7))]);
    }
    const rows = await stack.ctx.orm.em
      .fork()
      .execute<{ distance: number }[]>(
        'select search_typo_distance(p->>0, p->>1) as distance from jsonb_array_elements(?::jsonb) with ordinality as u(p, n) order by n',
        [JSON.stringify(pairs)],
      );
    expect(rows.map((r) => r.distance)).toEqual(pairs.map(([a, b]) => osaDistance(a, b)));
  });

  it('asks for a rebuild while the stored documents were tokenized by an older version, and not after it', async () => {
    const em = stack.ctx.orm.em.fork();
    const [{ version }] = await em.execute<{ version: number }[]>('select tokens_version as version from search_index_state');
    try {
      await em.execute('update search_index_state set tokens_version = 1');
      expect(await stack.ctx.search.needsRebuild()).toBe(true);
      await reindexAll(stack.ctx.orm.em.fork(), stack.ctx.search);
      expect(await stack.ctx.search.needsRebuild()).toBe(false);
    } finally {
      await em.execute('update search_index_state set tokens_version = ?', [version]);
    }
  });
});
