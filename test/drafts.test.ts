import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as lz4Frame } from 'lz4js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allBlobReferencesSql } from '../src/services/quota/blobReferences.js';
import { deleteExpiredDrafts } from '../src/services/versions/drafts.js';
import { type Client, client, putDraft as saveDraft, storedStructure, type TestUser, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('drafts: autosave replaces, checkpoint makes one version', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;
  let pdb: Buffer;

  beforeAll(async () => {
    stack = await startStack();
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'autosave' })).body.id;
    pdb = await fixture('ngl_1crn.pdb');
  });
  afterAll(() => stack?.stop());

  const newStructure = (name: string, content: Uint8Array) => storedStructure(api, projectId, name, content);

  const putDraft = (id: string, body: Uint8Array, query = '') => saveDraft(api, id, body, query);
  const versionCount = async (id: string) => (await api.get(`/v1/structures/${id}/versions`)).body.items.length;
  const draftReferences = async (sha: string) => {
    const rows = await stack.ctx.orm.em
      .fork()
      .execute<{ category: string }[]>(`select category from (${allBlobReferencesSql()}) r where r.owner_id = ? and r.blob_sha256 = ?`, [user.id, sha]);
    return rows.map((r) => r.category);
  };
  const blobFileExists = (sha: string) => stack.ctx.blobs.has(sha);

  it('replaces the draft on every save, makes no version, and releases the old draft bytes', async () => {
    const id = await newStructure('1crn.pdb', pdb);
    const first = Buffer.from(pdb.toString('latin1').replace('CRAMBIN', 'CRAMBIN DRAFT ONE'), 'latin1');
    const saved = await putDraft(id, first, '?filename=1crn-edit.pdb');
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ structureId: id, format: 'pdb', size: first.length, sha256: sha256(first), filename: '1crn-edit.pdb' });
    expect(await draftReferences(sha256(first))).toEqual(['drafts']);

    const second = Buffer.from(pdb.toString('latin1').replace('CRAMBIN', 'CRAMBIN DRAFT TWO'), 'latin1');
    // Multipart with field "file" works the same.
    const form = new FormData();
    form.append('file', new Blob([second]), '1crn-edit.pdb');
    const replaced = await api.raw(`/v1/structures/${id}/draft`, { method: 'PUT', body: form });
    expect(replaced.status).toBe(200);
    expect(((await replaced.json()) as any).sha256).toBe(sha256(second));

    expect(await versionCount(id)).toBe(1);
    expect(await blobFileExists(sha256(first))).toBe(false);
    expect(await draftReferences(sha256(first))).toEqual([]);
    const bytes = await api.raw(`/v1/structures/${id}/draft`);
    expect(Buffer.from(await bytes.arrayBuffer()).equals(second)).toBe(true);
    const described = await api.get(`/v1/structures/${id}/draft`, { accept: 'application/json' });
    expect(described.body).toMatchObject({ sha256: sha256(second), format: 'pdb' });
  });

  it('checkpoints the draft into exactly one version, then the draft is gone', async () => {
    const id = await newStructure('1crn.pdb', pdb);
    const edited = Buffer.from(pdb.toString('latin1').replace('CRAMBIN', 'CRAMBIN CHECKPOINTED'), 'latin1');
    expect((await putDraft(id, gzipSync(edited))).status).toBe(200); // gzip bodies are unwrapped like uploads
    const checkpoint = await api.post(`/v1/structures/${id}/checkpoint`, { message: 'after refinement' }, { prefer: 'wait=30' });
    expect(checkpoint.status).toBe(201);
    expect(checkpoint.body.structure.currentVersion).toMatchObject({ number: 2, message: 'after refinement', sha256: sha256(edited), size: edited.length });
    expect(checkpoint.body.structure.currentVersion.summary.atoms).toBe(327);
    expect(await versionCount(id)).toBe(2);
    expect((await api.get(`/v1/structures/${id}/draft`)).status).toBe(404);
    expect(await draftReferences(sha256(edited))).toEqual(['current']);
    const again = await api.post(`/v1/structures/${id}/checkpoint`, { message: 'twice' }, { prefer: 'wait=30' });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('no_draft');
    expect(await versionCount(id)).toBe(2);
    const search = await api.get(`/v1/search?q=${encodeURIComponent('CHECKPOINTED')}`);
    expect(search.body.items.map((i: { structure: { id: string } }) => i.structure.id)).toContain(id);
  });

  it('makes one version when the same draft is checkpointed twice at once', async () => {
    const id = await newStructure('1crn.pdb', pdb);
    const edited = Buffer.from(pdb.toString('latin1').replace('CRAMBIN', 'CRAMBIN RACE'), 'latin1');
    expect((await putDraft(id, edited)).status).toBe(200);
    const [a, b] = await Promise.all([
      api.post(`/v1/structures/${id}/checkpoint`, { message: 'a' }),
      api.post(`/v1/structures/${id}/checkpoint`, { message: 'b' }),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.upload.id).toBe(b.body.upload.id);
    expect((await waitForUpload(api, a.body.upload.id)).state).toBe('stored');
    expect(await versionCount(id)).toBe(2);
  });

  it('keeps a draft that does not parse, and refuses it only at the checkpoint', async () => {
    const id = await newStructure('1crn.pdb', pdb);
    const broken = Buffer.from('HEADER    HALF EDITED\nREMARK   1 NOTHING YET\nEND\n');
    expect((await putDraft(id, broken, '?filename=wip.pdb')).status).toBe(200);
    const checkpoint = await api.post(`/v1/structures/${id}/checkpoint`, { message: 'too early' }, { prefer: 'wait=30' });
    expect(checkpoint.status).toBe(422);
    expect(checkpoint.body.error.code).toBe('invalid_structure');
    expect(await versionCount(id)).toBe(1);
    const kept = await api.raw(`/v1/structures/${id}/draft`);
    expect(Buffer.from(await kept.arrayBuffer()).equals(broken)).toBe(true);
    expect(await draftReferences(sha256(broken))).toEqual(['drafts']);
  });

  it('takes only sessions as drafts of a session, and only structures as drafts of a structure', async () => {
    const session = Buffer.concat([Buffer.from('# ChimeraX Session version 3\n'), Buffer.alloc(4000, 0x00)]);
    const sessionId = await newStructure('view.cxs', lz4Frame(session));
    const wrong = await putDraft(sessionId, pdb);
    expect(wrong.status).toBe(415);
    expect(wrong.body.error.code).toBe('not_a_session');
    const lz4NotSession = await putDraft(sessionId, lz4Frame(pdb));
    expect(lz4NotSession.status).toBe(422);
    expect(lz4NotSession.body.error.code).toBe('invalid_session');
    const autosaved = await putDraft(sessionId, lz4Frame(Buffer.concat([session, Buffer.from('more')])));
    expect(autosaved.status).toBe(200);
    expect(autosaved.body).toMatchObject({ format: 'cxs', filename: 'view.cxs' });

    const structureId = await newStructure('1crn.pdb', pdb);
    const sessionForStructure = await putDraft(structureId, lz4Frame(session));
    expect(sessionForStructure.status).toBe(415);
    expect(sessionForStructure.body.error.code).toBe('session_draft_for_structure');
    const picture = await putDraft(structureId, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(100)]));
    expect(picture.status).toBe(415);
    expect(await stack.ctx.staging.list()).toEqual([]);
  });

  it('deletes a draft on request and expired drafts on the cleanup schedule', async () => {
    const id = await newStructure('1crn.pdb', pdb);
    const draft = Buffer.from(pdb.toString('latin1').replace('CRAMBIN', 'CRAMBIN OLD DRAFT'), 'latin1');
    expect((await putDraft(id, draft)).status).toBe(200);
    const em = stack.ctx.orm.em.fork();
    await em.execute(`update drafts set updated_at = now() - interval '40 days' where structure_id = ?`, [id]);
    expect(await deleteExpiredDrafts(stack.ctx.orm.em.fork(), stack.ctx.blobs, 30)).toBe(1);
    expect((await api.get(`/v1/structures/${id}/draft`)).status).toBe(404);
    expect(await blobFileExists(sha256(draft))).toBe(false);

    expect((await putDraft(id, draft)).status).toBe(200);
    expect(await deleteExpiredDrafts(stack.ctx.orm.em.fork(), stack.ctx.blobs, 30)).toBe(0);
    expect((await api.delete(`/v1/structures/${id}/draft`)).status).toBe(204);
    expect((await api.delete(`/v1/structures/${id}/draft`)).status).toBe(404);
    expect(await blobFileExists(sha256(draft))).toBe(false);
  });
});
