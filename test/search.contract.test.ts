import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { checkSearchDrift, reindexAll } from '../src/services/search/maintenance.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * One contract for every SearchIndex backend, through the HTTP API on real structures: each filter,
 * sort, facet and pagination case is checked against an oracle computed from the seeded structures
 * themselves (their parsed summaries), so the same cases hold for the corpus and for the fallback.
 */

const CORPUS = path.resolve(import.meta.dirname, '../../shared/corpus');
const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const typesense = loadConfig({ ...process.env, DATA_DIR: '/tmp' }).typesense;

interface Seed {
  /** A corpus file, and the fixture used when the corpus is absent. */
  corpus: string;
  fixture: string;
  name: string;
  description?: string;
  tags: string[];
  metadata?: Record<string, unknown>;
  /** The second project. */
  other?: boolean;
  trashed?: boolean;
}

const SEEDS: Seed[] = [
  {
    corpus: 'pdb/gemmi_1lzh.pdb.gz',
    fixture: 'ngl_1crn.pdb',
    name: 'Hen egg-white lysozyme',
    tags: ['screening-2026', 'enzyme'],
    metadata: { organism: 'Gallus gallus', lab: { bench: 'B7' } },
  },
  {
    corpus: 'pdb/ngl_2src.pdb',
    fixture: 'ngl_1CRN.cif',
    name: 'c-Src tyrosine kinase',
    description: 'ATP-site ligand bound',
    tags: ['screening-2026', 'kinase-panel'],
  },
  { corpus: 'pdb/ngl_1crn.pdb', fixture: 'ngl_1crn.pdb', name: 'Crambin', tags: ['plant'], metadata: { organism: 'Crambe hispanica' } },
  { corpus: 'pdb/biopython_1LCD.pdb', fixture: 'ngl_multi-models-example.pdb', name: 'Lac repressor headpiece', tags: ['nmr'], other: true },
  { corpus: 'cif/ngl_1LVZ.cif', fixture: 'ngl_1CRN.cif', name: 'Metarhodopsin peptide', tags: ['nmr', 'gpcr'], other: true },
  { corpus: 'sdf/chemfiles_aspirin.sdf', fixture: 'chemfiles_insertion-code.pdb', name: 'Aspirin', tags: ['fragment'] },
  {
    corpus: 'mol2/chemfiles_imatinib.mol2',
    fixture: 'chemfiles_insertion-code.pdb',
    name: 'Imatinib',
    description: 'an inhibitor of the Abl kinase',
    tags: ['fragment', 'kinase-panel'],
  },
  { corpus: 'xyz/chemfiles_methane.xyz', fixture: 'ngl_1crn.pdb', name: 'Methane', tags: ['fragment'], trashed: true },
];

interface Seeded {
  id: string;
  name: string;
  projectId: string;
  kind: string;
  format: string;
  tags: string[];
  atoms: number | null;
  resolution: number | null;
  method: string | null;
  hasLigand: boolean;
  createdAt: string;
  deleted: boolean;
}

const useCorpus = await fs
  .stat(CORPUS)
  .then(() => true)
  .catch(() => false);

const backends: { name: string; env: Record<string, string>; skip: boolean }[] = [
  { name: 'postgres', env: { SEARCH_BACKEND: 'postgres' }, skip: false },
  {
    name: 'typesense',
    env: { SEARCH_BACKEND: 'typesense', TYPESENSE_COLLECTION: `mvtest_${randomBytes(4).toString('hex')}` },
    skip: !typesense,
  },
];

async function seedBytes(seed: Seed, useCorpus: boolean) {
  const file = useCorpus ? path.join(CORPUS, seed.corpus) : path.join(FIXTURES, seed.fixture);
  return { name: path.basename(file), content: await fs.readFile(file) };
}

const ids = (body: { items: { structure: { id: string } }[] }) => body.items.map((i) => i.structure.id);
const sorted = (values: string[]) => [...values].sort();

for (const backend of backends) {
  describe.skipIf(backend.skip)(`search contract: ${backend.name} backend (the typesense run is skipped unless TYPESENSE_URL is set)`, () => {
    let stack: Stack;
    let api: Client;
    let strangerApi: Client;
    let strangerEmail: string;
    let seeded: Seeded[];
    let strangerLysozyme: string;
    let projects: string[];

    const search = async (query: string) => {
      const response = await api.get(`/v1/search?${query}`);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return response.body;
    };
    const visible = () => seeded.filter((s) => !s.deleted);

    beforeAll(async () => {
      stack = await startStack({ env: backend.env });
      const user = await userFactory(stack.ctx);
      const stranger = await userFactory(stack.ctx);
      api = client(stack.url, user.token);
      strangerApi = client(stack.url, stranger.token);
      strangerEmail = stranger.email;
      projects = [(await api.post('/v1/projects', { name: 'screening' })).body.id, (await api.post('/v1/projects', { name: 'nmr' })).body.id];
      seeded = [];
      for (const seed of SEEDS) {
        const response = await api.upload(
          `/v1/projects/${projects[seed.other ? 1 : 0]}/structures`,
          await seedBytes(seed, useCorpus),
          { name: seed.name, description: seed.description ?? '', tags: seed.tags.join(','), metadata: JSON.stringify(seed.metadata ?? {}) },
          { prefer: 'wait=60' },
        );
        expect(response.status, `${seed.corpus}: ${JSON.stringify(response.body)}`).toBe(201);
        const s = response.body.structure;
        const summary = s.currentVersion.summary;
        seeded.push({
          id: s.id,
          name: s.name,
          projectId: s.projectId,
          kind: s.kind,
          format: s.currentVersion.format,
          tags: s.tags,
          atoms: summary.atoms ?? null,
          resolution: summary.resolution ?? null,
          method: summary.method ? String(summary.method).toUpperCase() : null,
          hasLigand: (summary.ligands ?? []).length > 0,
          createdAt: s.createdAt,
          deleted: false,
        });
      }
      for (const [i, seed] of SEEDS.entries()) {
        if (!seed.trashed) continue;
        expect((await api.delete(`/v1/structures/${seeded[i].id}`)).status).toBe(204);
        seeded[i].deleted = true;
      }
      const strangerProject = (await strangerApi.post('/v1/projects', { name: 'mine' })).body.id;
      const theirs = await strangerApi.upload(
        `/v1/projects/${strangerProject}/structures`,
        await seedBytes(SEEDS[0], useCorpus),
        { name: 'Stranger lysozyme', tags: 'screening-2026,enzyme' },
        { prefer: 'wait=60' },
      );
      expect(theirs.status).toBe(201);
      strangerLysozyme = theirs.body.structure.id;
      // The trash reaches the index through its own index job.
      for (const deadline = Date.now() + 15_000; (await search('trash=only')).total !== 1; ) {
        if (Date.now() > deadline) throw new Error('the trashed structure never left the default search');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    afterAll(() => stack?.stop());

    it('seeded real structures with the summaries the filters need', () => {
      expect(seeded).toHaveLength(SEEDS.length);
      expect(new Set(seeded.map((s) => s.kind)).size).toBeGreaterThan(useCorpus ? 1 : 0);
      expect(seeded.some((s) => s.atoms !== null)).toBe(true);
    });

    it('applies each filter exactly as the oracle says', async () => {
      const atoms = visible()
        .map((s) => s.atoms)
        .filter((a): a is number => a !== null)
        .sort((a, b) => a - b);
      const middle = atoms[Math.floor(atoms.length / 2)];
      const cutoff = seeded[3].createdAt;
      const cases: [string, (s: Seeded) => boolean][] = [
        ['tag=screening-2026', (s) => s.tags.includes('screening-2026')],
        ['tag=screening-2026&tag=kinase-panel', (s) => s.tags.includes('screening-2026') && s.tags.includes('kinase-panel')],
        ['tag=enzyme,kinase-panel&tagMode=any', (s) => s.tags.includes('enzyme') || s.tags.includes('kinase-panel')],
        ['kind=macromolecule', (s) => s.kind === 'macromolecule'],
        ['kind=small-molecule', (s) => s.kind === 'small-molecule'],
        ['format=pdb', (s) => s.format === 'pdb'],
        [`format=${seeded[4].format}`, (s) => s.format === seeded[4].format],
        [`project=${projects[1]}`, (s) => s.projectId === projects[1]],
        [`atomsMin=${middle}`, (s) => s.atoms !== null && s.atoms >= middle],
        [`atomsMax=${middle}`, (s) => s.atoms !== null && s.atoms <= middle],
        [`atomsMin=10&atomsMax=${middle}`, (s) => s.atoms !== null && s.atoms >= 10 && s.atoms <= middle],
        ['resolutionMax=2', (s) => s.resolution !== null && s.resolution <= 2],
        ['resolutionMin=2', (s) => s.resolution !== null && s.resolution >= 2],
        ['method=x-ray%20diffraction', (s) => s.method === 'X-RAY DIFFRACTION'],
        [`createdAfter=${encodeURIComponent(cutoff)}`, (s) => s.createdAt >= cutoff],
        [`createdBefore=${encodeURIComponent(cutoff)}`, (s) => s.createdAt <= cutoff],
        ['hasLigand=true', (s) => s.hasLigand],
        ['hasLigand=false', (s) => !s.hasLigand],
        [
          'kind=macromolecule&tag=screening-2026&resolutionMax=3',
          (s) => s.kind === 'macromolecule' && s.tags.includes('screening-2026') && s.resolution !== null && s.resolution <= 3,
        ],
      ];
      let nonEmpty = 0;
      for (const [query, predicate] of cases) {
        const expected = visible().filter(predicate);
        const body = await search(`${query}&limit=100`);
        expect(sorted(ids(body)), query).toEqual(sorted(expected.map((s) => s.id)));
        expect(body.total, query).toBe(expected.length);
        if (expected.length) nonEmpty++;
      }
      // The cases must mean something on this seed set, not pass by matching nothing.
      expect(nonEmpty).toBeGreaterThanOrEqual(cases.length - 4);
    });

    it('sorts by each key, with missing values last', async () => {
      const compare = (key: keyof Seeded, direction: 1 | -1) => (a: Seeded, b: Seeded) => {
        const x = a[key] as string | number | null;
        const y = b[key] as string | number | null;
        if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
        if (typeof x === 'string' && typeof y === 'string') return direction * x.toLowerCase().localeCompare(y.toLowerCase());
        return direction * ((x as number) - (y as number));
      };
      const cases: [string, keyof Seeded, 1 | -1][] = [
        ['created', 'createdAt', 1],
        ['-created', 'createdAt', -1],
        ['name', 'name', 1],
        ['-name', 'name', -1],
        ['atoms', 'atoms', 1],
        ['-atoms', 'atoms', -1],
        ['resolution', 'resolution', 1],
        ['-resolution', 'resolution', -1],
      ];
      for (const [sort, key, direction] of cases) {
        const body = await search(`sort=${sort}&limit=100`);
        const got = ids(body).map((id) => seeded.find((s) => s.id === id) as Seeded);
        expect(got.length, sort).toBe(visible().length);
        // Each neighbour pair in order (ties may come either way), and missing values at the end.
        for (let i = 1; i < got.length; i++) expect(compare(key, direction)(got[i - 1], got[i]), `${sort} at ${i}`).toBeLessThanOrEqual(0);
      }
      expect(ids(await search('sort=created&limit=100'))).toEqual(ids(await search('sort=-created&limit=100')).reverse());
      // Without words, relevance falls back to newest first.
      expect(ids(await search('limit=100'))).toEqual(ids(await search('sort=-created&limit=100')));
    });

    it('counts facets over every match, not only the page', async () => {
      const body = await search('facets=tag,kind,format,method&limit=1');
      expect(body.items).toHaveLength(1);
      expect(body.total).toBe(visible().length);
      const count = (values: (string | null)[]) => {
        const counts: Record<string, number> = {};
        for (const v of values) if (v !== null) counts[v] = (counts[v] ?? 0) + 1;
        return counts;
      };
      expect(body.facets.tag).toEqual(count(visible().flatMap((s) => s.tags)));
      expect(body.facets.kind).toEqual(count(visible().map((s) => s.kind)));
      expect(body.facets.format).toEqual(count(visible().map((s) => s.format)));
      expect(body.facets.method).toEqual(count(visible().map((s) => s.method)));
      const filtered = await search('tag=fragment&facets=tag');
      expect(filtered.facets.tag).toEqual(
        count(
          visible()
            .filter((s) => s.tags.includes('fragment'))
            .flatMap((s) => s.tags),
        ),
      );
      // With a tag filter the matches are gathered, and kind, format and method are counted in one pass over them.
      const tagged = await search('tag=fragment&facets=tag,kind,format,method');
      const withFragment = visible().filter((s) => s.tags.includes('fragment'));
      expect(tagged.total).toBe(withFragment.length);
      expect(tagged.facets).toEqual({
        tag: count(withFragment.flatMap((s) => s.tags)),
        kind: count(withFragment.map((s) => s.kind)),
        format: count(withFragment.map((s) => s.format)),
        method: count(withFragment.map((s) => s.method)),
      });
      expect((await search('tag=fragment&facets=format,method')).facets).toEqual({
        format: count(withFragment.map((s) => s.format)),
        method: count(withFragment.map((s) => s.method)),
      });
      expect((await api.get('/v1/search?facets=colour')).body.error.code).toBe('invalid_request');
    });

    it('pages by cursor through every order without gaps or repeats', async () => {
      for (const query of ['sort=name', 'sort=-atoms', 'sort=resolution', 'sort=-created', 'q=kinase', 'tag=fragment&sort=created']) {
        const all = ids(await search(`${query}&limit=100`));
        const walked: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const body: { items: { structure: { id: string } }[]; nextCursor: string | null; total: number } = await search(
            `${query}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          );
          expect(body.total, query).toBe(all.length);
          walked.push(...ids(body));
          cursor = body.nextCursor;
          pages++;
        } while (cursor && pages < 20);
        expect(walked, query).toEqual(all);
        expect(pages, query).toBe(Math.max(1, Math.ceil(all.length / 2)));
      }
      const first = await search('sort=name&limit=2');
      const wrongSort = await api.get(`/v1/search?sort=atoms&limit=2&cursor=${first.nextCursor}`);
      expect(wrongSort.status).toBe(400);
      expect(wrongSort.body.error.code).toBe('invalid_cursor');
      expect((await api.get('/v1/search?cursor=not-a-cursor')).body.error.code).toBe('invalid_cursor');
    });

    it('matches words anywhere, prefixes, and typos; ranks and highlights', async () => {
      const lysozyme = seeded[0].id;
      const kinase = seeded[1].id;
      const crambin = seeded[2].id;
      expect(ids(await search('q=lysozyme'))).toContain(lysozyme);
      expect(ids(await search('q=lysozme'))).toContain(lysozyme); // one letter missing
      expect(ids(await search('q=lysozme'))).not.toContain(crambin);
      const kin = ids(await search('q=kin'));
      expect(kin).toContain(kinase);
      expect(kin).not.toContain(crambin);
      expect(ids(await search('q=tyrosine%20kinase'))).toEqual([kinase]); // every word must match
      expect(ids(await search('q=gallus'))).toEqual([lysozyme]); // nested metadata value
      expect(ids(await search('q=B7'))).toEqual([lysozyme]);
      const hit = (await search('q=lysozyme')).items.find((i: { structure: { id: string } }) => i.structure.id === lysozyme);
      expect(hit.score).toBeGreaterThan(0);
      expect(hit.highlights.join(' ')).toMatch(/<mark>lysozyme<\/mark>/i);
      // A name match outranks a description-only match.
      const ranked = ids(await search('q=kinase'));
      expect(ranked.indexOf(kinase)).toBeLessThan(ranked.indexOf(seeded[6].id));
      expect((await search('q=%21%21%21')).total).toBe(0);
    });

    it("never shows one user another user's structures", async () => {
      expect(ids(await search('q=lysozyme&limit=100'))).not.toContain(strangerLysozyme);
      expect((await search('tag=enzyme')).total).toBe(1);
      const theirs = await strangerApi.get('/v1/search?q=lysozyme&facets=tag');
      expect(ids(theirs.body)).toEqual([strangerLysozyme]);
      expect(theirs.body.facets.tag).toEqual({ 'screening-2026': 1, enzyme: 1 });
      expect((await strangerApi.get('/v1/search?q=kinase')).body.total).toBe(0);
      // Typo correction only draws on the searcher's own words ("hispanica" is only in this user's metadata).
      expect(ids(await search('q=hispanca'))).toEqual([seeded[2].id]);
      expect((await strangerApi.get('/v1/search?q=hispanca')).body.total).toBe(0);
    });

    it("shows a project's members what it holds, by scope, and nothing of the owner's other projects", async () => {
      const member = await api.post(`/v1/projects/${projects[1]}/members`, { email: strangerEmail, role: 'viewer' });
      expect(member.status, JSON.stringify(member.body)).toBe(201);
      try {
        const shared = visible().filter((s) => s.projectId === projects[1]);
        expect(shared.length).toBeGreaterThan(0);
        const as = async (query: string) => {
          const response = await strangerApi.get(`/v1/search?${query}&limit=100`);
          expect(response.status, JSON.stringify(response.body)).toBe(200);
          return response.body;
        };
        expect(ids(await as('scope=all')).sort()).toEqual([strangerLysozyme, ...shared.map((s) => s.id)].sort());
        expect(ids(await as('scope=shared')).sort()).toEqual(shared.map((s) => s.id).sort());
        expect(ids(await as('scope=mine'))).toEqual([strangerLysozyme]);
        // Words and tags find the shared project's structures, never the owner's other project's.
        expect(ids(await as('q=crambin'))).toEqual([]);
        expect(ids(await as('q=hispanica'))).toEqual([]);
        expect(ids(await as('tag=plant'))).toEqual([]);
        const nmr = shared.filter((s) => s.tags.includes('nmr')).map((s) => s.id);
        expect(ids(await as('tag=nmr')).sort()).toEqual(nmr.sort());
        const faceted = await as('scope=shared&facets=tag,kind');
        const tagCounts: Record<string, number> = {};
        for (const s of shared) for (const tag of s.tags) tagCounts[tag] = (tagCounts[tag] ?? 0) + 1;
        expect(faceted.facets.tag).toEqual(tagCounts);
        expect(faceted.total).toBe(shared.length);
      } finally {
        expect((await api.delete(`/v1/projects/${projects[1]}/members/${member.body.id}`)).status).toBe(204);
      }
      // Once removed, nothing of the project is found any more.
      expect(ids(await strangerApi.get('/v1/search?scope=all&limit=100').then((r) => r.body))).toEqual([strangerLysozyme]);
    });

    it('keeps the trash out unless asked for', async () => {
      const trashed = seeded.find((s) => s.deleted) as Seeded;
      expect(ids(await search('q=methane'))).toEqual([]);
      expect(ids(await search('q=methane&trash=include'))).toEqual([trashed.id]);
      expect(ids(await search('trash=only'))).toEqual([trashed.id]);
      expect((await search('trash=include')).total).toBe(seeded.length);
    });

    it('shows changes once the index job has run: rename, retag, trash, restore, purge', async () => {
      const target = seeded[2];
      await api.patch(`/v1/structures/${target.id}`, { name: 'Crambin renamed', tags: ['plant', 'retagged'] });
      await expect.poll(async () => ids(await search('q=renamed')), { timeout: 15_000 }).toEqual([target.id]);
      expect(ids(await search('tag=retagged'))).toEqual([target.id]);
      await api.delete(`/v1/structures/${target.id}`);
      await expect.poll(async () => ids(await search('tag=retagged')), { timeout: 15_000 }).toEqual([]);
      await api.post(`/v1/structures/${target.id}/restore`);
      await expect.poll(async () => ids(await search('tag=retagged')), { timeout: 15_000 }).toEqual([target.id]);
      await api.patch(`/v1/structures/${target.id}`, { name: 'Crambin', tags: ['plant'] });
      await expect.poll(async () => ids(await search('tag=retagged')), { timeout: 15_000 }).toEqual([]);

      const project = projects[0];
      const extra = await api.upload(
        `/v1/projects/${project}/structures`,
        await seedBytes(SEEDS[2], useCorpus),
        { name: 'Short-lived' },
        { prefer: 'wait=60' },
      );
      expect(ids(await search('q=short'))).toEqual([extra.body.structure.id]);
      await api.delete(`/v1/structures/${extra.body.structure.id}?purge=true`);
      await expect.poll(async () => (await search('q=short&trash=include')).total, { timeout: 15_000 }).toBe(0);
    });

    it('finds and repairs drift between Postgres and the index', async () => {
      const target = seeded[5];
      const before = ids(await search('q=aspirin'));
      expect(before).toEqual([target.id]);
      await stack.ctx.search.delete(target.id);
      const [document] = [...(await stack.ctx.search.get([seeded[0].id])).values()];
      await stack.ctx.search.upsert({ ...document, name: 'stale name' });
      const report = await checkSearchDrift(stack.ctx.orm.em.fork(), stack.ctx.search, stack.ctx.queues, 1000);
      expect(report).toMatchObject({ missing: 1, orphaned: 0, rebuilt: false });
      expect(report.differing).toBeGreaterThanOrEqual(2);
      await expect.poll(async () => ids(await search('q=aspirin')), { timeout: 15_000 }).toEqual([target.id]);
      await expect.poll(async () => (await search('q=stale')).total, { timeout: 15_000 }).toBe(0);
      await expect
        .poll(async () => (await checkSearchDrift(stack.ctx.orm.em.fork(), stack.ctx.search, stack.ctx.queues, 1000)).reenqueued, { timeout: 15_000 })
        .toBe(0);
    });

    it('gives the same results after a rebuild from scratch as after incremental indexing', async () => {
      const queries = [
        'q=kinase&facets=tag,kind,format,method',
        'q=lysozme',
        'q=kin&sort=name',
        'sort=-atoms&facets=tag',
        'tag=fragment&tagMode=any&sort=name',
        'trash=include&sort=created&facets=kind',
        'resolutionMax=2.5&sort=resolution',
        'hasLigand=true&facets=method',
      ];
      const snapshot = async () => {
        const results = [];
        for (const query of queries) {
          const body = await search(`${query}&limit=100`);
          results.push({
            query,
            ids: ids(body),
            total: body.total,
            facets: body.facets,
            highlights: body.items.map((i: { highlights: string[] }) => i.highlights),
          });
        }
        return results;
      };
      const incremental = await snapshot();
      if (backend.name === 'postgres') {
        // From scratch: nothing of the incremental index survives.
        await stack.ctx.orm.em.fork().execute('delete from search_documents; delete from search_terms');
        expect((await search('')).total).toBe(0);
      }
      const progress: number[] = [];
      const result = await reindexAll(stack.ctx.orm.em.fork(), stack.ctx.search, ({ done }) => progress.push(done));
      const [{ n }] = await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from structures');
      expect(result.documents).toBe(Number(n));
      expect(progress[progress.length - 1]).toBe(result.documents);
      expect(await snapshot()).toEqual(incremental);
    });
  });
}
