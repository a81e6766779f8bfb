import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presentSearchItems } from '../src/api/presenters/search.js';
import { visibilityOf } from '../src/services/auth/visibility.js';
import { reindexAll } from '../src/services/search/maintenance.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * The Postgres index's per-owner counts (search_counts, search_tag_counts) are kept by triggers on
 * search_documents and answer totals and facets without reading documents. Here every kind of change
 * a structure goes through is made through the API, and after each the kept counts must equal the
 * counts made from scratch from the documents; the searches they answer must equal the same searches
 * answered from the documents; and the hits' structures must be what GET /v1/structures/:id says.
 */

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const fixture = async (name: string) => ({ name, content: await fs.readFile(path.join(FIXTURES, name)) });

describe('search counts kept by the Postgres index', () => {
  let stack: Stack;
  let api: Client;
  let otherApi: Client;
  let otherEmail: string;
  let ownerId: string;
  let projects: string[];
  const ids: Record<string, string> = {};

  /** Waits until no index job is waiting or running (the API enqueues before it answers). */
  const indexSettled = async () => {
    const queue = stack.ctx.queues.index;
    for (let quiet = 0; quiet < 2; ) {
      const counts = await queue.getJobCounts('waiting', 'active', 'prioritized');
      quiet = Object.values(counts).every((n) => n === 0) ? quiet + 1 : 0;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  /** Kept counts (zero rows are allowed leftovers) and counts made from the documents, in one order. */
  const counts = async () => {
    const em = stack.ctx.orm.em.fork();
    const key = 'owner_id, deleted, kind, format, method, project_id, has_ligand';
    const kept = await em.execute(`select ${key}, documents from search_counts where documents <> 0 order by ${key}`);
    const fresh = await em.execute(
      `select owner_id, deleted, kind, coalesce(format, '') as format, coalesce(method, '') as method, project_id, has_ligand,
              count(*)::integer as documents
       from search_documents group by 1, 2, 3, 4, 5, 6, 7 order by ${key}`,
    );
    const keptTags = await em.execute('select owner_id, deleted, project_id, tag, documents from search_tag_counts where documents <> 0 order by 1, 2, 3, 4');
    const freshTags = await em.execute(
      'select owner_id, deleted, project_id, tag, count(*)::integer as documents from search_documents, unnest(tags) as tag group by 1, 2, 3, 4 order by 1, 2, 3, 4',
    );
    return { kept, fresh, keptTags, freshTags };
  };

  const expectCountsRight = async (step: string) => {
    await indexSettled();
    const { kept, fresh, keptTags, freshTags } = await counts();
    expect(fresh.length, `${step}: documents to count`).toBeGreaterThan(0);
    expect(kept, `${step}: search_counts`).toEqual(fresh);
    expect(keptTags, `${step}: search_tag_counts`).toEqual(freshTags);
  };

  const search = async (query: string, as = api) => {
    const response = await as.get(`/v1/search?${query}`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  };

  /**
   * The same search answered from the counts and from the documents: createdAfter far in the past
   * matches every document, but it is a range, which the counts cannot answer.
   */
  const countedAndGathered = async (query: string, as = api) => {
    const counted = await search(`${query}&limit=500`, as);
    const gathered = await search(`${query}&limit=500&createdAfter=2000-01-01T00:00:00Z`, as);
    return { counted, gathered };
  };

  beforeAll(async () => {
    stack = await startStack({ env: { SEARCH_BACKEND: 'postgres' } });
    const user = await userFactory(stack.ctx);
    ownerId = user.id;
    api = client(stack.url, user.token);
    const other = await userFactory(stack.ctx);
    otherApi = client(stack.url, other.token);
    otherEmail = other.email;
    projects = [(await api.post('/v1/projects', { name: 'one' })).body.id, (await api.post('/v1/projects', { name: 'two' })).body.id];
    const upload = async (as: Client, project: string, file: string, fields: Record<string, string>) => {
      const response = await as.upload(`/v1/projects/${project}/structures`, await fixture(file), fields, { prefer: 'wait=60' });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return response.body.structure.id as string;
    };
    ids.crambin = await upload(api, projects[0], 'ngl_1crn.pdb', { name: 'Crambin', tags: 'plant,xray' });
    ids.aspirin = await upload(api, projects[0], 'chemfiles_aspirin.sdf', { name: 'Aspirin', tags: 'fragment' });
    ids.imatinib = await upload(api, projects[1], 'chemfiles_imatinib.mol2', { name: 'Imatinib', tags: 'fragment,kinase-panel' });
    ids.models = await upload(api, projects[1], 'ngl_multi-models-example.pdb', { name: 'Models', tags: 'nmr' });
    const theirs = (await otherApi.post('/v1/projects', { name: 'theirs' })).body.id;
    ids.theirs = await upload(otherApi, theirs, 'ngl_1crn.pdb', { name: 'Their crambin', tags: 'plant' });
  });
  afterAll(() => stack?.stop());

  it('stay equal to a count from scratch through create, update, new version, trash, restore and purge', async () => {
    await expectCountsRight('after uploads');

    expect((await api.patch(`/v1/structures/${ids.aspirin}`, { name: 'Acetylsalicylic acid', tags: ['fragment', 'nsaid'] })).status).toBe(200);
    await expectCountsRight('after rename and retag');

    const version = await api.upload(`/v1/structures/${ids.crambin}/versions`, await fixture('ngl_1CRN.cif'), { message: 'as mmCIF' }, { prefer: 'wait=60' });
    expect(version.status, JSON.stringify(version.body)).toBe(201);
    await expectCountsRight('after a new version in another format');

    expect((await api.delete(`/v1/structures/${ids.imatinib}`)).status).toBe(204);
    await expectCountsRight('after trash');
    expect((await search('trash=only')).total).toBe(1);

    expect((await api.post(`/v1/structures/${ids.imatinib}/restore`)).status).toBe(200);
    await expectCountsRight('after restore');

    expect((await api.delete(`/v1/structures/${ids.models}?purge=true`)).status).toBe(204);
    await expectCountsRight('after purge');
    expect((await search('trash=include')).total).toBe(3);

    // Directly through the index too: a document deleted, and one written again unchanged.
    await stack.ctx.search.delete(ids.aspirin);
    const [document] = [...(await stack.ctx.search.get([ids.crambin])).values()];
    await stack.ctx.search.upsert(document);
    await expectCountsRight('after direct index writes');
  });

  it('are recounted by a rebuild, whatever they held', async () => {
    await stack.ctx.orm.em.fork().execute('update search_counts set documents = documents + 7; update search_tag_counts set documents = 0');
    await reindexAll(stack.ctx.orm.em.fork(), stack.ctx.search);
    await expectCountsRight('after a rebuild');
  });

  it('stay right when a rebuild and single writes of several owners run at once', async () => {
    const documents = [...(await stack.ctx.search.get(Object.values(ids))).values()];
    expect(documents.length).toBeGreaterThan(3);
    const writes = Array.from({ length: 40 }, (_, i) => {
      const document = documents[i % documents.length];
      return stack.ctx.search.upsert({ ...document, deleted: i % 2 === 0, tags: i % 3 ? document.tags : [...document.tags, `busy-${i % 4}`] });
    });
    await Promise.all([reindexAll(stack.ctx.orm.em.fork(), stack.ctx.search), ...writes, stack.ctx.search.upsertMany(documents)]);
    await expectCountsRight('after concurrent writes');
    // The documents as Postgres has them again, for the tests after this one.
    await reindexAll(stack.ctx.orm.em.fork(), stack.ctx.search);
    await expectCountsRight('after putting them back');
  });

  it('answer totals and facets exactly as the documents do', async () => {
    for (const query of [
      'facets=tag,kind,format,method',
      'trash=include&facets=tag,kind,format,method',
      `kind=small-molecule&facets=kind,format,method`,
      `project=${projects[1]}&facets=tag,kind,format,method`,
      'format=pdb&hasLigand=false&facets=kind,method',
      'sort=name',
    ]) {
      const { counted, gathered } = await countedAndGathered(query);
      expect(counted.total, query).toBe(gathered.total);
      expect(counted.facets, query).toEqual(gathered.facets);
      expect(counted.items.map((i: { structure: { id: string } }) => i.structure.id)).toEqual(
        gathered.items.map((i: { structure: { id: string } }) => i.structure.id),
      );
    }
    // Each owner's counts are their own.
    expect((await search('facets=tag')).facets.tag).toEqual({ fragment: 2, 'kinase-panel': 1, nsaid: 1, plant: 1, xray: 1 });
    expect((await search('facets=tag', otherApi)).facets.tag).toEqual({ plant: 1 });
  });

  it('answer a member of a shared project from the counts exactly as from the documents', async () => {
    const member = await api.post(`/v1/projects/${projects[1]}/members`, { email: otherEmail, role: 'viewer' });
    expect(member.status, JSON.stringify(member.body)).toBe(201);
    try {
      for (const query of [
        'facets=tag,kind,format,method',
        'scope=shared&facets=tag,kind',
        `project=${projects[1]}&facets=tag,kind,format,method`,
        'trash=include&facets=tag',
        'kind=small-molecule&facets=tag,format',
      ]) {
        const { counted, gathered } = await countedAndGathered(query, otherApi);
        expect(counted.total, query).toBe(gathered.total);
        expect(counted.facets, query).toEqual(gathered.facets);
      }
      // A total the counts cannot give (a range) is counted per owner's arm: the same as the listed hits.
      for (const query of ['atomsMin=1', 'atomsMin=1&sort=atoms', 'scope=shared&atomsMin=1&sort=-created']) {
        const listed = await search(`${query}&limit=500`, otherApi);
        expect(listed.total, query).toBe(listed.items.length);
        expect(listed.total, query).toBe((await search(`${query}&limit=500&facets=kind`, otherApi)).total);
        expect(listed.total, query).toBeGreaterThan(0);
      }
      // The shared project's tags are counted for the member, the owner's other project's are not.
      const tags = (await search('facets=tag', otherApi)).facets.tag;
      expect(tags['kinase-panel']).toBe(1);
      expect(tags.plant).toBe(1);
      expect(tags.xray).toBeUndefined();
    } finally {
      expect((await api.delete(`/v1/projects/${projects[1]}/members/${member.body.id}`)).status).toBe(204);
    }
  });

  it('keep owners apart even when two share an index key', async () => {
    // The other owner's document, its words and tags scoped under this owner's key, as a key collision would leave them.
    await stack.ctx.orm.em
      .fork()
      .execute(
        'update search_documents set scoped_document = search_scope_tsvector(?, to_tsvector(?, body)), scoped_tags = search_scope_tags(?, tags) where structure_id = ?',
        [ownerId, 'simple', ownerId, ids.theirs],
      );
    const found = await search('q=crambin');
    expect(found.items.map((i: { structure: { id: string } }) => i.structure.id)).toEqual([ids.crambin]);
    expect(found.total).toBe(1);
    expect((await search('tag=plant')).total).toBe(1);
  });

  it('take a word the owner’s structures contain as typed, and look for typos of words they do not', async () => {
    const named = async (name: string) => {
      const created = await api.upload(`/v1/projects/${projects[1]}/structures`, await fixture('chemfiles_aspirin.sdf'), { name }, { prefer: 'wait=60' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return created.body.structure.id as string;
    };
    const spelled = await named('Lysozyme');
    const misspelled = await named('Lysozme');
    await indexSettled();
    const found = async (q: string) => (await search(`q=${q}`)).items.map((i: { structure: { id: string } }) => i.structure.id);
    expect(await found('lysozyme')).toEqual([spelled]);
    expect(await found('lysozme')).toEqual([misspelled]);
    // Not a word of theirs: its likely typos are searched for too (and the word as a prefix).
    expect((await found('lysozymme')).sort()).toEqual([spelled, misspelled].sort());
  });

  it('highlight each hit from its own text, even when a text held control characters', async () => {
    // The page's texts come back joined by a control character: one inside a description must not shift them.
    const created = await api.upload(
      `/v1/projects/${projects[0]}/structures`,
      await fixture('chemfiles_aspirin.sdf'),
      { name: 'Described', description: 'crambin\u0001models\u0001 crambin-like' },
      { prefer: 'wait=60' },
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const described = created.body.structure.id as string;
    await indexSettled();
    const found = await search('q=crambin&sort=name');
    const highlights = Object.fromEntries(found.items.map((i: { structure: { id: string }; highlights: string[] }) => [i.structure.id, i.highlights]));
    expect(Object.keys(highlights).sort()).toEqual([ids.crambin, described].sort());
    expect(highlights[described]).toEqual([expect.stringContaining('<mark>crambin</mark> models <mark>crambin</mark>-like')]);
    expect(highlights[ids.crambin].join(' ')).toMatch(/<mark>crambin<\/mark>/i);
    expect(highlights[ids.crambin].join(' ')).not.toContain('models');
  });

  it('present hits as GET /v1/structures/:id shows them, without the validation warnings', async () => {
    const body = await search('limit=10');
    expect(body.items.length).toBeGreaterThan(1);
    for (const item of body.items) {
      const { body: full } = await api.get(`/v1/structures/${item.structure.id}`);
      const { warnings: _warnings, ...version } = full.currentVersion;
      // Reading it counted a view, after the search.
      expect(item.structure).toEqual({ ...full, currentVersion: version, viewCount: full.viewCount - 1 });
    }
    // The presenter the other backend uses builds the same cards, in the hits' order, and only the owner's.
    const again = await search('limit=10');
    const hits = again.items.map((i: { structure: { id: string }; score: number }) => ({ structureId: i.structure.id, score: i.score, highlights: [] }));
    const presented = JSON.parse(
      await presentSearchItems(stack.ctx.orm.em.fork(), visibilityOf(ownerId), [...hits, { structureId: ids.theirs, score: 0, highlights: [] }]),
    );
    expect(presented.map((p: { structure: unknown }) => p.structure)).toEqual(again.items.map((i: { structure: unknown }) => i.structure));
  });
});
