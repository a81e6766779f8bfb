/**
 * Search hits show each structure from its kept card (structures.card_members, maintained by triggers; see
 * search/cards.ts). A kept card must never say anything other than serializeStructure says
 * of the structure as it is now: checked after each kind of change a structure or its current
 * version goes through. View and download counts are live, and counting them leaves the card alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presentSearchItems } from '../src/api/presenters/search.js';
import { visibilityOf } from '../src/services/auth/visibility.js';
import { repairStructureCards } from '../src/services/search/maintenance.js';
import { type Client, client, serializedNow, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const atom = (serial: number, residue: number, x: number) =>
  `ATOM  ${String(serial).padStart(5)}  CA  ALA A${String(residue).padStart(4)}    ${x.toFixed(3).padStart(8)}   0.000   0.000  1.00 20.00           C  `;
const pdb = (atoms: number) => `${Array.from({ length: atoms }, (_, i) => atom(i + 1, i + 1, i * 3.8)).join('\n')}\nEND\n`;

describe('structure cards', () => {
  let stack: Stack;
  let api: Client;
  let ownerId: string;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack();
    const user = await userFactory(stack.ctx);
    ownerId = user.id;
    api = client(stack.url, user.token);
    const project = await api.post('/v1/projects', { name: 'cards' });
    expect(project.status).toBe(201);
    projectId = project.body.id;
  });
  afterAll(() => stack?.stop());

  /** What serializeStructure says of the structure now, as a search hit shows it (no validation warnings). */
  const expected = async (id: string) => {
    const shown = await serializedNow(stack.ctx, id);
    delete shown.currentVersion.warnings;
    return shown;
  };
  /** The kept card as JSON text (kept as its members, without the opening brace). */
  const keptCard = async (id: string) => {
    const [row] = await stack.ctx.orm.em.fork().execute<{ members: string | null }[]>('select card_members as members from structures where id = ?', [id]);
    return row?.members ? `{${row.members}` : undefined;
  };
  /** The structure as a search listing of the project shows it (once the index holds it). */
  const hit = async (id: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { status, body } = await api.get(`/v1/search?project=${projectId}&trash=include&limit=100`);
      expect(status).toBe(200);
      const found = body.items.find((item: { structure: { id: string } }) => item.structure.id === id);
      if (found) return found.structure;
      if (Date.now() > deadline) throw new Error(`structure ${id} not searchable after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  /** The search hit, and the kept card with the counts, say what serializeStructure says. */
  const agrees = async (id: string) => {
    const now = await expected(id);
    expect(await hit(id)).toEqual(now);
    const { viewCount, downloadCount, ...card } = now;
    expect(JSON.parse((await keptCard(id)) as string)).toEqual(card);
    return now;
  };

  it('keeps each card as serializeStructure shows the structure, through every kind of change', async () => {
    const created = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'first.pdb', content: pdb(3) }, { tags: 'a' }, { prefer: 'wait=30' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.structure.id as string;
    await agrees(id);

    const patched = await api.patch(`/v1/structures/${id}`, { name: 'Renamed', description: 'now described', tags: ['b', 'c'], metadata: { lab: 'south' } });
    expect(patched.status).toBe(200);
    expect(await agrees(id)).toMatchObject({ name: 'Renamed', description: 'now described', tags: ['b', 'c'], metadata: { lab: 'south' } });

    const second = await api.upload(`/v1/structures/${id}/versions`, { name: 'second.pdb', content: pdb(5) }, { message: 'more atoms' }, { prefer: 'wait=30' });
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect((await agrees(id)).currentVersion).toMatchObject({ number: 2, filename: 'second.pdb', message: 'more atoms', pinned: false });

    expect((await api.patch(`/v1/structures/${id}/versions/2`, { pinned: true })).status).toBe(200);
    expect((await agrees(id)).currentVersion.pinned).toBe(true);
    // Pinning a version that is not the current one changes no card.
    const before = await keptCard(id);
    expect((await api.patch(`/v1/structures/${id}/versions/1`, { pinned: true })).status).toBe(200);
    expect(await keptCard(id)).toBe(before);

    expect((await api.delete(`/v1/structures/${id}`)).status).toBeLessThan(300);
    expect((await agrees(id)).deletedAt).not.toBeNull();
    expect((await api.post(`/v1/structures/${id}/restore`)).status).toBeLessThan(300);
    expect((await agrees(id)).deletedAt).toBeNull();
  });

  it('shows view and download counts as they are, and counting them leaves the card alone', async () => {
    const created = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'counted.pdb', content: pdb(4) }, {}, { prefer: 'wait=30' });
    expect(created.status).toBe(201);
    const id = created.body.structure.id as string;
    await agrees(id);
    const card = await keptCard(id);

    expect((await api.get(`/v1/structures/${id}`)).status).toBe(200);
    expect((await api.get(`/v1/structures/${id}`)).status).toBe(200);
    expect((await api.raw(`/v1/structures/${id}/download`)).status).toBe(200);
    const now = await agrees(id);
    expect(now.viewCount).toBeGreaterThanOrEqual(2);
    expect(now.downloadCount).toBe(1);
    expect(await keptCard(id)).toBe(card);
  });

  it('builds a missing card on the spot; presenting hits from another backend shows the same, and only the owner’s', async () => {
    const created = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'lost.pdb', content: pdb(2) }, {}, { prefer: 'wait=30' });
    expect(created.status).toBe(201);
    const id = created.body.structure.id as string;
    await agrees(id);
    await stack.ctx.orm.em.fork().execute('update structures set card_members = null where id = ?', [id]);
    expect(await keptCard(id)).toBeUndefined();
    expect(await hit(id)).toEqual(await expected(id));

    const stranger = client(stack.url, (await userFactory(stack.ctx)).token);
    const theirs = await stranger.post('/v1/projects', { name: 'theirs' });
    const foreign = await stranger.upload(`/v1/projects/${theirs.body.id}/structures`, { name: 'x.pdb', content: pdb(2) }, {}, { prefer: 'wait=30' });
    expect(foreign.status).toBe(201);
    const presented = await presentSearchItems(stack.ctx.orm.em.fork(), visibilityOf(ownerId), [
      { structureId: id, score: 1.5, highlights: ['a <mark>lost</mark> one'] },
      { structureId: foreign.body.structure.id, score: 1, highlights: [] },
    ]);
    expect(JSON.parse(presented)).toEqual([{ structure: await expected(id), score: 1.5, highlights: ['a <mark>lost</mark> one'] }]);
  });

  it('reindexing repairs cards that are missing or went stale, and only those', async () => {
    const ids: string[] = [];
    for (const name of ['r1.pdb', 'r2.pdb', 'r3.pdb']) {
      const created = await api.upload(`/v1/projects/${projectId}/structures`, { name, content: pdb(ids.length + 2) }, {}, { prefer: 'wait=30' });
      expect(created.status).toBe(201);
      ids.push(created.body.structure.id);
    }
    const em = stack.ctx.orm.em.fork();
    await em.execute('update structures set card_members = null where id = ?', [ids[0]]);
    await em.execute(`update structures set card_members = '"stale": true}' where id = ?`, [ids[1]]);
    expect(await repairStructureCards(em)).toBeGreaterThanOrEqual(2);
    for (const id of ids) await agrees(id);
    expect(await repairStructureCards(em)).toBe(0);
  });
});
