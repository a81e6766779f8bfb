import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, userFactory } from './helpers/factories.js';
import { importArchive, waitForImport } from './helpers/imports.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));

/**
 * Export → import: an archive molvault wrote, imported into another project of the same user and
 * into another user's account (as another molvault would), reproduces the project field by field:
 * names, descriptions, kinds, tags, metadata, creation times, every version with its number (gaps
 * left by pruning included), message, pin, author, creation time and bytes, the relationships
 * between the structures, and the project's description, tags and metadata on a new project.
 */
describe('export → import round trip', () => {
  let stack: Stack;
  let api: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack();
    api = client(stack.url, (await userFactory(stack.ctx)).token);
    projectId = (await api.post('/v1/projects', { name: 'Source', description: 'the source project', tags: ['origin'], metadata: { lab: 'SB2' } })).body.id;
    const upload = async (name: string, content: Uint8Array, fields: Record<string, string> = {}) => {
      const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content }, fields, { prefer: 'wait=30' });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      return response.body.structure.id as string;
    };
    const pdb = await fixture('ngl_1crn.pdb');
    const crambin = await upload('crambin.pdb', pdb, {
      name: 'crambin',
      description: 'three revisions',
      tags: 'xray,plant',
      metadata: JSON.stringify({ organism: 'Crambe hispanica', resolution: 1.5, refs: ['a', 'b'], nested: { ok: true } }),
    });
    // Version 1 pinned, then the newest 2 kept: version 2 is pruned once version 4 arrives (numbers 1, 3, 4).
    expect((await api.patch(`/v1/structures/${crambin}/versions/1`, { pinned: true })).status).toBe(200);
    expect((await api.patch(`/v1/projects/${projectId}`, { pruning: { keepLast: 2 } })).status).toBe(200);
    for (const [i, message] of ['refined', 'final', 'really final'].entries()) {
      const response = await api.upload(
        `/v1/structures/${crambin}/versions`,
        { name: `crambin-v${i + 2}.pdb`, content: Buffer.concat([pdb, Buffer.from(`REMARK 999 ${message.toUpperCase()}\n`)]) },
        { message },
        { prefer: 'wait=30' },
      );
      expect(response.status).toBe(201);
    }
    const aspirin = await upload('aspirin.sdf', await fixture('chemfiles_aspirin.sdf'), { tags: 'ligand', metadata: JSON.stringify({ source: 'chemfiles' }) });
    const imatinib = await upload('imatinib.mol2', await fixture('chemfiles_imatinib.mol2'), { name: 'imatinib / Gleevec ✓' });
    expect((await api.post(`/v1/structures/${aspirin}/relationships`, { type: 'ligand-of', targetId: crambin })).status).toBe(201);
    expect((await api.post(`/v1/structures/${imatinib}/relationships`, { type: 'related', targetId: aspirin })).status).toBe(201);
  });
  afterAll(() => stack?.stop());

  /** The project as a client sees it: structures by name, each with its versions and their bytes' sha256. */
  async function snapshot(as: Client, project: string) {
    const list = await as.get(`/v1/structures?project=${project}&limit=500`);
    expect(list.status).toBe(200);
    const names = new Map<string, string>(list.body.items.map((item: any) => [item.id, item.name]));
    const structures = [];
    for (const item of list.body.items) {
      const structure = (await as.get(`/v1/structures/${item.id}`)).body;
      const versions = (await as.get(`/v1/structures/${item.id}/versions?limit=500`)).body.items;
      const relationships = (await as.get(`/v1/structures/${item.id}/relationships`)).body;
      const outgoing = relationships.items
        .filter((r: any) => r.direction === 'outgoing')
        .map((r: any) => ({ link: `${r.type} → ${names.get(r.targetId)}`, createdAt: r.createdAt }))
        .sort((x: any, y: any) => x.link.localeCompare(y.link));
      structures.push({
        name: structure.name,
        description: structure.description,
        kind: structure.kind,
        tags: [...structure.tags].sort(),
        metadata: structure.metadata,
        createdAt: structure.createdAt,
        current: structure.currentVersion.number,
        relationships: outgoing,
        versions: versions
          .map((v: any) => ({
            number: v.number,
            sha256: v.sha256,
            format: v.format,
            filename: v.filename,
            message: v.message,
            pinned: v.pinned,
            author: v.author,
            createdAt: v.createdAt,
          }))
          .sort((a: any, b: any) => a.number - b.number),
      });
    }
    const projectBody = (await as.get(`/v1/projects/${project}`)).body;
    return {
      project: { description: projectBody.description, tags: projectBody.tags, metadata: projectBody.metadata },
      structures: structures.sort((a, b) => a.name.localeCompare(b.name)),
    };
  }

  for (const archive of ['zip', 'tar.gz'] as const) {
    it(`reproduces the project from a ${archive} export, in another project and for another user`, async () => {
      const exported = await api.post('/v1/exports', { projectId, versions: 'all', archive }, { prefer: 'wait=60' });
      expect(exported.status, JSON.stringify(exported.body)).toBe(200);
      const download = await api.raw(`/v1/exports/${exported.body.export.id}/download`);
      expect(download.status).toBe(200);
      const bytes = new Uint8Array(await download.arrayBuffer());
      const original = await snapshot(api, projectId);
      expect(original.structures.find((s) => s.name === 'crambin')?.versions.map((v: any) => v.number)).toEqual([1, 3, 4]);
      expect(original.structures.flatMap((s) => s.relationships)).toHaveLength(2);

      const other = client(stack.url, (await userFactory(stack.ctx)).token);
      for (const [who, as] of [
        ['same user', api],
        ['another user', other],
      ] as const) {
        const target = (await as.post('/v1/projects', { name: `Restored ${archive} (${who})` })).body.id;
        const accepted = await importArchive(as, target, bytes);
        expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
        const done = await waitForImport(as, accepted.body.import.id);
        expect(done.state).toBe('completed');
        expect(done.failed).toBe(0);
        expect(await snapshot(as, target)).toEqual(original);
      }
    });
  }
});
