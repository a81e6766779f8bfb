import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import type { Client } from './factories.js';

/**
 * The end-to-end slice a deployment must serve, through `api`: a PDB uploaded into a new project,
 * stored, found by a word of its name, downloaded byte for byte, converted to mmCIF and exported as
 * a tar.gz. The project and the uploaded bytes, for what a test checks next.
 */
export async function expectSliceServed(api: Client, project: string, word: string): Promise<{ projectId: string; bytes: Buffer }> {
  const projectId = (await api.post('/v1/projects', { name: project })).body.id;
  const bytes = await fs.readFile(path.join(import.meta.dirname, '../fixtures', 'ngl_1crn.pdb'));
  const stored = await api.upload(
    `/v1/projects/${projectId}/structures`,
    { name: '1crn.pdb', content: bytes },
    { name: `Crambin ${word}` },
    { prefer: 'wait=120' },
  );
  expect(stored.status, JSON.stringify(stored.body)).toBe(201);
  const id = stored.body.structure.id;
  await expect
    .poll(async () => (await api.get(`/v1/search?q=${word}`)).body.items?.map((i: { structure: { id: string } }) => i.structure.id), { timeout: 60_000 })
    .toContain(id);
  const download = await api.raw(`/v1/structures/${id}/download`);
  expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);
  const converted = await api.raw(`/v1/structures/${id}/download?format=cif`, { headers: { prefer: 'wait=120' } });
  expect(converted.status).toBe(200);
  expect((await converted.text()).startsWith('data_')).toBe(true);
  const exported = await api.post('/v1/exports', { projectId, archive: 'tar.gz' }, { prefer: 'wait=120' });
  expect(exported.body.export?.state, JSON.stringify(exported.body)).toBe('completed');
  const archive = await api.raw(`/v1/exports/${exported.body.export.id}/download`);
  expect(archive.status).toBe(200);
  expect((await archive.arrayBuffer()).byteLength).toBeGreaterThan(0);
  return { projectId, bytes };
}
