import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * With two words or more, the Postgres index finds each word's prefix by the exact lexemes the index
 * holds under the searched owner's or project's key that start with it (search_lexemes, kept by a
 * trigger on the documents), not by the GIN index's prefix match. Both must find exactly the same
 * documents: every lexeme a document gains is listed, whoever writes it, and a prefix with many
 * lexemes (beyond what is looked up) falls back to the prefix match.
 */

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const fixture = async (name: string) => ({ name, content: await fs.readFile(path.join(FIXTURES, name)) });

describe('Postgres search: several words by the exact lexemes their prefixes stand for', () => {
  let stack: Stack;
  let owner: TestUser;
  let ownerApi: Client;
  let memberApi: Client;
  let otherApi: Client;
  let other: TestUser;
  let project: string;
  const ids: Record<string, string> = {};

  const found = async (as: Client, query: string) => {
    const response = await as.get(`/v1/search?${query}&limit=100`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const body = response.body as { items: { structure: { id: string } }[]; total: number };
    expect(body.total, query).toBe(body.items.length);
    return body.items.map((i) => i.structure.id).sort();
  };
  const sorted = (...values: string[]) => [...values].sort();

  beforeAll(async () => {
    stack = await startStack({ env: { SEARCH_BACKEND: 'postgres' } });
    owner = await userFactory(stack.ctx);
    const member = await userFactory(stack.ctx);
    ownerApi = client(stack.url, owner.token);
    memberApi = client(stack.url, member.token);
    other = await userFactory(stack.ctx);
    otherApi = client(stack.url, other.token);
    project = (await ownerApi.post('/v1/projects', { name: 'kinases' })).body.id;
    const upload = async (as: Client, into: string, name: string) => {
      const response = await as.upload(`/v1/projects/${into}/structures`, await fixture('chemfiles_aspirin.sdf'), { name }, { prefer: 'wait=60' });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return response.body.structure.id as string;
    };
    ids.kinase = await upload(ownerApi, project, 'Kinase alpha human');
    ids.kinases = await upload(ownerApi, project, 'Kinases beta human');
    ids.kinaseLike = await upload(ownerApi, project, 'Kinase-like gamma mouse');
    // Twenty lexemes starting with "zz": more than a prefix is made exact for.
    ids.many = await upload(ownerApi, project, `human ${Array.from({ length: 20 }, (_, i) => `zz${String(i).padStart(2, '0')}`).join(' ')}`);
    const others = (await otherApi.post('/v1/projects', { name: 'others' })).body.id;
    ids.others = await upload(otherApi, others, 'Kinase zqxwvut human');
    const shared = await ownerApi.post(`/v1/projects/${project}/members`, { email: member.email, role: 'viewer' });
    expect(shared.status, JSON.stringify(shared.body)).toBe(201);
  });
  afterAll(() => stack?.stop());

  it('finds by several prefixes what each finds alone, for the owner and for a member of the project', async () => {
    for (const as of [ownerApi, memberApi]) {
      expect(await found(as, 'q=kinase%20human')).toEqual(sorted(ids.kinase, ids.kinases));
      expect(await found(as, 'q=kin%20hum')).toEqual(sorted(ids.kinase, ids.kinases));
      expect(await found(as, 'q=kinase%20mouse')).toEqual([ids.kinaseLike]);
      expect(await found(as, 'q=kinase-like%20gamma')).toEqual([ids.kinaseLike]);
      expect(await found(as, 'q=zz%20human')).toEqual([ids.many]);
      expect(await found(as, 'q=zz07%20human')).toEqual([ids.many]);
      expect(await found(as, 'q=zz%20zz19')).toEqual([ids.many]);
      // Words only another owner's documents hold find nothing here; a typo still corrects.
      expect(await found(as, 'q=zqxwvut%20human')).toEqual([]);
      expect(await found(as, 'q=zqx%20hum')).toEqual([]);
      expect(await found(as, 'q=kinsae%20alpha')).toEqual([ids.kinase]);
      // Sorted otherwise than by relevance, the same documents.
      expect(await found(as, 'q=kin%20hum&sort=name')).toEqual(sorted(ids.kinase, ids.kinases));
    }
    expect(await found(otherApi, 'q=kinase%20human')).toEqual([ids.others]);
    expect(await found(otherApi, 'q=zqx%20hum')).toEqual([ids.others]);
  });

  it('finds a word a document gains when it is renamed', async () => {
    await ownerApi.patch(`/v1/structures/${ids.kinase}`, { name: 'Kinome alpha human' });
    await expect.poll(async () => found(ownerApi, 'q=kinom%20human'), { timeout: 15_000 }).toEqual([ids.kinase]);
    expect(await found(memberApi, 'q=kinom%20alpha')).toEqual([ids.kinase]);
  });

  it('makes a prefix exact with exactly the lexemes it matches, under every key the index holds', async () => {
    // Every prefix of every word held under every key of this file's owners, made exact, against the
    // GIN prefix match, document by document (the run's database also holds other files' documents).
    const em = stack.ctx.orm.em.fork();
    const [{ differing, checked }] = await em.execute<{ differing: string; checked: string }[]>(
      `with keyed as (
         select distinct split_part(u.lexeme, ':', 1) as key, substr(split_part(u.lexeme, ':', 2), 1, n) as word
         from search_documents d, unnest(d.scoped_document) u, generate_series(1, 4) n
         where d.owner_id in (?, ?) and length(split_part(u.lexeme, ':', 2)) >= n)
       select count(*) filter (where (d.scoped_document @@ (quote_literal(k.key || ':' || k.word) || ':*')::tsquery)
                                 <> (d.scoped_document @@ search_find_items(k.key, k.word)::tsquery)) as differing,
              count(*) as checked
       from keyed k cross join search_documents d
       where d.owner_id in (?, ?)`,
      [owner.id, other.id, owner.id, other.id],
    );
    expect(Number(checked)).toBeGreaterThan(1000);
    expect(Number(differing)).toBe(0);
  });
});
