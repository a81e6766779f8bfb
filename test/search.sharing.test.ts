import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSearchIndex, PROJECT_KEYED_MAX } from '../src/search/postgres.js';
import { SEARCH_SORTS, type SearchQuery } from '../src/search/types.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * The Postgres index keys every document's words and tags under its owner and under its project; a
 * search reads its own documents by the owner's keys and a shared project's by the project's (or,
 * when an owner shares many projects with the searcher, by the owner's). Who sees what is decided by
 * the search alone, so membership changes (direct, by team, role, removal, transfer) must show at
 * once, and nothing of a project outside the searcher's shares may ever be found.
 */

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const fixture = async (name: string) => ({ name, content: await fs.readFile(path.join(FIXTURES, name)) });

type Item = { structure: { id: string }; score: number };

describe('Postgres search with shared projects', () => {
  let stack: Stack;
  let ownerApi: Client;
  let memberApi: Client;
  let member: TestUser;
  let owner: TestUser;
  let open: string;
  let closed: string;
  const ids: Record<string, string> = {};

  const search = async (as: Client, query: string) => {
    const response = await as.get(`/v1/search?${query}&limit=100`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body as { items: Item[]; total: number; facets: Record<string, Record<string, number>> };
  };
  const found = async (as: Client, query: string) => {
    const body = await search(as, query);
    expect(body.total, query).toBe(body.items.length);
    return body.items.map((i) => i.structure.id).sort();
  };
  const sorted = (...values: string[]) => [...values].sort();

  /** What the member finds when they see the open project, and when they see only their own. */
  const expectSees = async (seesOpen: boolean, step: string) => {
    const plus = (...shared: string[]) => (seesOpen ? shared : []);
    expect(await found(memberApi, 'q=crambin'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'q=cramb'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'q=crambn'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'q=crambin&sort=name'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'q=aspirin'), step).toEqual(sorted(...plus(ids.openAspirin)));
    expect(await found(memberApi, 'tag=plant'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'tag=plant,fragment&tagMode=any'), step).toEqual(sorted(ids.mine, ...plus(ids.open, ids.openAspirin)));
    expect(await found(memberApi, 'tag=plant&facets=tag'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'q=crambin&tag=plant'), step).toEqual(sorted(ids.mine, ...plus(ids.open)));
    expect(await found(memberApi, 'scope=shared&q=crambin'), step).toEqual(sorted(...plus(ids.open)));
    expect(await found(memberApi, `q=crambin&project=${open}`), step).toEqual(sorted(...plus(ids.open)));
    expect(await found(memberApi, `q=crambin&project=${closed}`), step).toEqual([]);
    // The closed project's words are never found, however they are asked for.
    expect(await found(memberApi, 'q=secret'), step).toEqual([]);
    expect(await found(memberApi, 'tag=classified'), step).toEqual([]);
    const faceted = await search(memberApi, 'q=crambin&facets=tag');
    expect(faceted.facets.tag, step).toEqual(seesOpen ? { plant: 2, mine: 1, shared: 1 } : { plant: 1, mine: 1 });
  };

  beforeAll(async () => {
    stack = await startStack({ env: { SEARCH_BACKEND: 'postgres' } });
    owner = await userFactory(stack.ctx);
    member = await userFactory(stack.ctx);
    ownerApi = client(stack.url, owner.token);
    memberApi = client(stack.url, member.token);
    open = (await ownerApi.post('/v1/projects', { name: 'open' })).body.id;
    closed = (await ownerApi.post('/v1/projects', { name: 'closed' })).body.id;
    const upload = async (as: Client, project: string, file: string, fields: Record<string, string>) => {
      const response = await as.upload(`/v1/projects/${project}/structures`, await fixture(file), fields, { prefer: 'wait=60' });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return response.body.structure.id as string;
    };
    ids.open = await upload(ownerApi, open, 'ngl_1crn.pdb', { name: 'Crambin shared', tags: 'plant,shared' });
    ids.openAspirin = await upload(ownerApi, open, 'chemfiles_aspirin.sdf', { name: 'Aspirin', tags: 'fragment' });
    ids.closed = await upload(ownerApi, closed, 'ngl_1crn.pdb', { name: 'Crambin secret', tags: 'plant,classified' });
    const mine = (await memberApi.post('/v1/projects', { name: 'mine' })).body.id;
    ids.mine = await upload(memberApi, mine, 'ngl_1crn.pdb', { name: 'Crambin of my own', tags: 'plant,mine' });
  });
  afterAll(() => stack?.stop());

  it('finds a shared project’s structures as soon as it is shared, and none once it is not, directly or through a team', async () => {
    await expectSees(false, 'before sharing');
    const direct = await ownerApi.post(`/v1/projects/${open}/members`, { email: member.email, role: 'viewer' });
    expect(direct.status, JSON.stringify(direct.body)).toBe(201);
    await expectSees(true, 'a viewer');
    expect((await ownerApi.patch(`/v1/projects/${open}/members/${direct.body.id}`, { role: 'editor' })).status).toBe(200);
    await expectSees(true, 'an editor');
    expect((await ownerApi.delete(`/v1/projects/${open}/members/${direct.body.id}`)).status).toBe(204);
    await expectSees(false, 'removed');

    const team = (await ownerApi.post('/v1/teams', { name: 'readers' })).body.id;
    const shared = await ownerApi.post(`/v1/projects/${open}/members`, { teamId: team, role: 'viewer' });
    expect(shared.status, JSON.stringify(shared.body)).toBe(201);
    await expectSees(false, 'shared with a team the member is not in');
    expect((await ownerApi.post(`/v1/teams/${team}/members`, { email: member.email })).status).toBe(201);
    await expectSees(true, 'through the team');
    expect((await ownerApi.delete(`/v1/teams/${team}/members/${member.id}`)).status).toBe(204);
    await expectSees(false, 'taken out of the team');
    expect((await ownerApi.post(`/v1/teams/${team}/members`, { email: member.email })).status).toBe(201);
    await expectSees(true, 'back in the team');
    expect((await ownerApi.delete(`/v1/projects/${open}/members/${shared.body.id}`)).status).toBe(204);
    await expectSees(false, 'the team removed from the project');
  });

  it('ranks a shared structure for a member exactly as for its owner', async () => {
    const direct = await ownerApi.post(`/v1/projects/${open}/members`, { email: member.email, role: 'viewer' });
    expect(direct.status).toBe(201);
    try {
      for (const q of ['crambin', 'cramb', 'crambn', 'crambin%20shared']) {
        const score = async (as: Client) => (await search(as, `q=${q}`)).items.find((i) => i.structure.id === ids.open)?.score;
        const byOwner = await score(ownerApi);
        expect(byOwner, q).toBeGreaterThan(0);
        expect(await score(memberApi), q).toBe(byOwner);
      }
    } finally {
      expect((await ownerApi.delete(`/v1/projects/${open}/members/${direct.body.id}`)).status).toBe(204);
    }
  });

  it('keeps projects apart even when two share an index key', async () => {
    const direct = await ownerApi.post(`/v1/projects/${open}/members`, { email: member.email, role: 'viewer' });
    expect(direct.status).toBe(201);
    const [document] = [...(await stack.ctx.search.get([ids.closed])).values()];
    try {
      // The closed project's document, its words and tags keyed under the open project's key too, as a key collision would leave them.
      await stack.ctx.orm.em.fork().execute(
        `update search_documents set scoped_document = search_index_tsvector(owner_id, ?, to_tsvector('simple', body)),
             scoped_tags = search_index_tags(owner_id, ?, tags) where structure_id = ?`,
        [open, open, ids.closed],
      );
      await expectSees(true, 'with a colliding project key');
    } finally {
      await stack.ctx.search.upsert(document);
      expect((await ownerApi.delete(`/v1/projects/${open}/members/${direct.body.id}`)).status).toBe(204);
    }
  });

  it('reads an owner who shares many projects by the owner’s entries, with the same results', async () => {
    const projects = [open];
    for (let i = 0; projects.length <= PROJECT_KEYED_MAX; i++) projects.push((await ownerApi.post('/v1/projects', { name: `extra ${i}` })).body.id);
    const members: [string, string][] = [];
    for (const project of projects) {
      const added = await ownerApi.post(`/v1/projects/${project}/members`, { email: member.email, role: 'viewer' });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      members.push([project, added.body.id]);
    }
    try {
      await expectSees(true, `${projects.length} projects shared`);
    } finally {
      for (const [project, id] of members) expect((await ownerApi.delete(`/v1/projects/${project}/members/${id}`)).status).toBe(204);
    }
    await expectSees(false, 'all unshared');
  });

  it('corrects typos by the shared project’s own words, never by words of the owner’s other projects', async () => {
    // A word of a project the member cannot see ("crambn", one typo from "crambin"): were the owner's
    // whole vocabulary checked, the member's "crambn" would be taken as typed (no correction), and
    // their results would change with what they may not see.
    const hidden = (await ownerApi.post('/v1/projects', { name: 'hidden words' })).body.id;
    const decoy = await ownerApi.upload(`/v1/projects/${hidden}/structures`, await fixture('ngl_1crn.pdb'), { name: 'Crambn decoy' }, { prefer: 'wait=60' });
    expect(decoy.status, JSON.stringify(decoy.body)).toBe(201);
    const direct = await ownerApi.post(`/v1/projects/${open}/members`, { email: member.email, role: 'viewer' });
    expect(direct.status, JSON.stringify(direct.body)).toBe(201);
    try {
      // The owner, who sees the decoy, finds it as typed.
      expect(await found(ownerApi, 'q=crambn')).toEqual([decoy.body.structure.id]);
      expect(await found(memberApi, 'q=crambn')).toEqual(sorted(ids.mine, ids.open));
      expect(await found(memberApi, 'scope=shared&q=crambn')).toEqual([ids.open]);
      expect(await found(memberApi, 'q=crambn&sort=name')).toEqual(sorted(ids.mine, ids.open));
    } finally {
      expect((await ownerApi.delete(`/v1/projects/${open}/members/${direct.body.id}`)).status).toBe(204);
      // To the trash, out of the later tests' searches (its words stay in the owner's vocabulary).
      expect((await ownerApi.delete(`/v1/structures/${decoy.body.structure.id}`)).status).toBeLessThan(300);
    }
  });

  it('lists a shared project the same whether it is read by its own rows or by a walk of its owner’s index', async () => {
    // Listings (no words, no tags) read a shared project small beside its owner's documents by its
    // own rows, a large one by a walk of the owner's sort index; both ways, forced, must agree page
    // by page, in every order, and with a count the kept counts cannot give (a range).
    const walk = new PostgresSearchIndex(stack.ctx.orm, undefined, 1, 'walk');
    const rows = new PostgresSearchIndex(stack.ctx.orm, undefined, 1, 'rows');
    const direct = await ownerApi.post(`/v1/projects/${open}/members`, { email: member.email, role: 'viewer' });
    expect(direct.status, JSON.stringify(direct.body)).toBe(201);
    try {
      const base: SearchQuery = { ownerId: member.id, shared: [{ ownerId: owner.id, projectIds: [open] }], limit: 1 };
      /** Every page of the query (one hit a page), and the totals each page gave. */
      const pages = async (index: PostgresSearchIndex, query: SearchQuery) => {
        const seen: { id: string; total: number }[] = [];
        let cursor: string | undefined;
        do {
          const page = await index.search({ ...query, cursor });
          seen.push(...page.hits.map((hit) => ({ id: hit.structureId, total: page.total })));
          cursor = page.nextCursor ?? undefined;
        } while (cursor && seen.length < 20);
        return seen;
      };
      const variants: Partial<SearchQuery>[] = [
        ...SEARCH_SORTS.filter((sort) => sort !== 'relevance').map((sort) => ({ sort })),
        { kind: 'macromolecule' },
        { resolutionMax: 5, sort: 'resolution' },
        { atomsMin: 1, sort: '-atoms' },
        { trash: 'include', sort: 'name' },
        { shared: [{ ownerId: owner.id, projectIds: [open] }], ownAll: false },
      ];
      for (const variant of variants) {
        const query = { ...base, ...variant } as SearchQuery;
        const byWalk = await pages(walk, query);
        expect(await pages(rows, query), JSON.stringify(variant)).toEqual(byWalk);
        expect(await pages(stack.ctx.search as PostgresSearchIndex, query), JSON.stringify(variant)).toEqual(byWalk);
      }
      // Not empty agreement: the listing holds the member's own structure and the open project's two.
      const all = await pages(rows, base);
      expect(all.map((hit) => hit.id).sort()).toEqual(sorted(ids.mine, ids.open, ids.openAspirin));
      expect(all.every((hit) => hit.total === 3)).toBe(true);
      const ranged = await pages(rows, { ...base, resolutionMax: 5 });
      expect(ranged.length).toBeGreaterThan(0);
      expect(ranged.every((hit) => hit.total === ranged.length)).toBe(true);
    } finally {
      await walk.close();
      await rows.close();
      expect((await ownerApi.delete(`/v1/projects/${open}/members/${direct.body.id}`)).status).toBe(204);
    }
  });

  it('forgets a project’s word once none of its documents holds it, whoever rewrites or removes them', async () => {
    // A word left in a project's vocabulary after its documents lost it would still decide what a
    // member's word is taken for (as typed, or which corrections), by documents no longer in the project.
    const em = stack.ctx.orm.em.fork();
    const words = async (project: string) =>
      (await em.execute<{ term: string }[]>(`select term from search_project_terms where project_id = ? and term like 'zanzibar%' order by 1`, [project])).map(
        (row) => row.term,
      );
    const first = (await ownerApi.post('/v1/projects', { name: 'words first' })).body.id;
    const second = (await ownerApi.post('/v1/projects', { name: 'words second' })).body.id;
    const upload = async (name: string) => {
      const response = await ownerApi.upload(`/v1/projects/${first}/structures`, await fixture('chemfiles_aspirin.sdf'), { name }, { prefer: 'wait=60' });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return response.body.structure.id as string;
    };
    const one = await upload('Zanzibarite zanzibarine');
    const two = await upload('Zanzibarite again');
    expect(await words(first)).toEqual(['zanzibarine', 'zanzibarite']);
    // Renamed: the word it alone held goes, the one another document holds stays.
    await ownerApi.patch(`/v1/structures/${one}`, { name: 'Plain one' });
    await expect.poll(async () => words(first), { timeout: 15_000 }).toEqual(['zanzibarite']);
    // Moved to another project (as the index writes it): its words go with it.
    const [document] = [...(await stack.ctx.search.get([two])).values()];
    await stack.ctx.search.upsert({ ...document, projectId: second });
    expect(await words(first)).toEqual([]);
    expect(await words(second)).toEqual(['zanzibarite']);
    // Removed from the index: gone from its project's words too.
    await stack.ctx.search.delete(two);
    expect(await words(second)).toEqual([]);
    await stack.ctx.search.upsert(document);
    expect(await words(first)).toEqual(['zanzibarite']);
    // To the trash, out of the later tests' searches.
    for (const id of [one, two]) expect((await ownerApi.delete(`/v1/structures/${id}`)).status).toBeLessThan(300);
  });

  it('finds a transferred project’s structures by their new owner’s keys, and by the project’s for the former owner', async () => {
    // The member becomes an owner of the open project, then its owner of record.
    const direct = await ownerApi.post(`/v1/projects/${open}/members`, { email: member.email, role: 'owner' });
    expect(direct.status, JSON.stringify(direct.body)).toBe(201);
    const moved = await ownerApi.patch(`/v1/projects/${open}`, { ownerId: member.id });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    await expect.poll(async () => found(memberApi, 'scope=mine&q=crambin'), { timeout: 15_000 }).toEqual(sorted(ids.mine, ids.open));
    await expect.poll(async () => found(memberApi, 'scope=mine&tag=plant'), { timeout: 15_000 }).toEqual(sorted(ids.mine, ids.open));
    expect(await found(memberApi, 'scope=shared&q=crambin')).toEqual([]);
    // The former owner is an owner member of the project now: they find it through the project's keys.
    await expect.poll(async () => found(ownerApi, 'scope=shared&q=crambin'), { timeout: 15_000 }).toEqual([ids.open]);
    expect(await found(ownerApi, 'q=crambin')).toEqual(sorted(ids.open, ids.closed));
    expect(await found(ownerApi, 'tag=plant')).toEqual(sorted(ids.open, ids.closed));
    expect(await found(ownerApi, 'q=aspirin')).toEqual([ids.openAspirin]);
  });
});
