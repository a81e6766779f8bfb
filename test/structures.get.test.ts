/**
 * GET /v1/structures/:id is answered by one statement that Postgres presents (search/cards.ts);
 * everything else serialises structures in Node (serializeStructure). Both must say the same thing:
 * compared here field for field, for a structure with validation warnings, tags and metadata, and
 * one in the trash; another user's structure is a 404, and every read counts a view.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, serializedNow, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const atom = (serial: number, chain: string, residue: number, x: number) =>
  `ATOM  ${String(serial).padStart(5)}  CA  ALA${chain.padStart(2)}${String(residue).padStart(4)}    ${x.toFixed(3).padStart(8)}   0.000   0.000  1.00 20.00           C  `;

describe('GET /v1/structures/:id', () => {
  let stack: Stack;
  let api: Client;
  let other: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack();
    api = client(stack.url, (await userFactory(stack.ctx)).token);
    other = client(stack.url, (await userFactory(stack.ctx)).token);
    const project = await api.post('/v1/projects', { name: 'presented' });
    expect(project.status).toBe(201);
    projectId = project.body.id;
  });
  afterAll(() => stack?.stop());

  const serialized = (id: string) => serializedNow(stack.ctx, id);

  it('shows what serializeStructure shows, warnings, tags and metadata included, and counts each read', async () => {
    // Two-character chain ids: read, with a warning that must appear under currentVersion.warnings.
    const text = [atom(1, 'AB', 1, 0), atom(2, 'AB', 2, 3.8), atom(3, 'CD', 1, 10), 'END', ''].join('\n');
    const created = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'wide.pdb', content: text },
      { tags: ['screening', 'x-ray'], metadata: JSON.stringify({ lab: 'north', temperatureK: 100 }) },
      { prefer: 'wait=30' },
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.structure.id as string;

    const first = await api.get(`/v1/structures/${id}`);
    expect(first.status).toBe(200);
    expect(first.body.currentVersion.warnings.map((w: { code: string }) => w.code)).toContain('wide_chain_ids');
    expect(first.body.tags).toEqual(['screening', 'x-ray']);
    expect(first.body).toEqual(await serialized(id));

    const second = await api.get(`/v1/structures/${id}`);
    expect(second.body.viewCount).toBe(first.body.viewCount + 1);
    expect(second.body).toEqual(await serialized(id));
  });

  it('shows a structure in the trash with its deletion time, and answers 404 to anyone else', async () => {
    const text = [atom(1, 'A', 1, 0), atom(2, 'A', 2, 3.8), 'END', ''].join('\n');
    const created = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'trashed.pdb', content: text }, {}, { prefer: 'wait=30' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.structure.id as string;
    expect((await api.delete(`/v1/structures/${id}`)).status).toBeLessThan(300);

    const shown = await api.get(`/v1/structures/${id}`);
    expect(shown.status).toBe(200);
    expect(shown.body.deletedAt).not.toBeNull();
    expect(shown.body).toEqual(await serialized(id));

    const stranger = await other.get(`/v1/structures/${id}`);
    expect(stranger.status).toBe(404);
    expect(stranger.body.error.code).toBe('not_found');
    // The stranger's read counted nothing.
    expect((await api.get(`/v1/structures/${id}`)).body.viewCount).toBe(shown.body.viewCount + 1);
  });
});
