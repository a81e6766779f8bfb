import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as lz4Frame } from 'lz4js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionHeader } from '../src/formats/session.js';
import { sniffFormat } from '../src/formats/sniff.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

/** What ChimeraX writes: the header line, then binary (msgpack) data, zero bytes included. */
function plainSession(version = 3, bodyBytes = 20_000): Buffer {
  const body = Buffer.concat([Buffer.from([0x92, 0x00, 0xc4, 0x10]), randomBytes(bodyBytes / 2), Buffer.alloc(bodyBytes / 2, 0x00)]);
  return Buffer.concat([Buffer.from(`# ChimeraX Session version ${version}\n`), body]);
}

/** An LZ4 frame by hand, as python-lz4 may write it: content size in the descriptor and a stored (uncompressed) first block. */
function lz4FrameWithStoredBlock(content: Buffer): Buffer {
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(content.length));
  const blockSize = Buffer.alloc(4);
  blockSize.writeUInt32LE((content.length | 0x80000000) >>> 0);
  return Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x40 | 0x20 | 0x08, 0x40]), size, Buffer.from([0x00]), blockSize, content, Buffer.alloc(4)]);
}

describe('session headers', () => {
  it('reads the header of plain, LZ4-framed and hand-made LZ4 frames', () => {
    const plain = plainSession(3);
    expect(readSessionHeader(plain)).toEqual({ ok: true, version: 3, compression: 'none' });
    expect(readSessionHeader(lz4Frame(plain))).toEqual({ ok: true, version: 3, compression: 'lz4' });
    expect(readSessionHeader(lz4FrameWithStoredBlock(plainSession(2)))).toEqual({ ok: true, version: 2, compression: 'lz4' });
    // Only the start of the first block is decoded: a frame cut after 200 bytes still shows its header.
    expect(readSessionHeader(lz4Frame(plain).subarray(0, 200))).toMatchObject({ ok: true, version: 3 });
  });

  it('says why an LZ4 frame or a text file is not a session', () => {
    const pdbInLz4 = lz4Frame(Buffer.from('ATOM      1  N   ALA A   1       0.000   0.000   0.000  1.00  0.00           N\n'));
    expect(readSessionHeader(pdbInLz4)).toEqual({ ok: false, reason: expect.stringContaining('LZ4-compressed, but its content is not a ChimeraX session') });
    expect(readSessionHeader(Buffer.from('# ChimeraX Session version x\n'))).toMatchObject({ ok: false });
    expect(readSessionHeader(Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x40]))).toMatchObject({ ok: false, reason: expect.stringContaining('cut off') });
  });

  it('sniffs sessions before the binary check', () => {
    expect(sniffFormat(plainSession())).toEqual({ format: 'cxs', confidence: 'certain' });
    expect(sniffFormat(lz4Frame(plainSession()))).toEqual({ format: 'cxs', confidence: 'likely' });
  });
});

describe('ChimeraX sessions through the API', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;

  beforeAll(async () => {
    stack = await startStack();
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'sessions' })).body.id;
  });
  afterAll(() => stack?.stop());

  const upload = (name: string, content: Uint8Array, fields: Record<string, string> = {}) =>
    api.upload(`/v1/projects/${projectId}/structures`, { name, content }, fields, { prefer: 'wait=30' });

  it.each([
    ['plain', (b: Buffer) => b, 'none', false],
    ['lz4-framed', (b: Buffer) => Buffer.from(lz4Frame(b)), 'lz4', false],
    ['gzip-wrapped', (b: Buffer) => gzipSync(b), 'none', true],
  ] as const)('stores a %s session as kind session with its version and size', async (_label, wrap, compression, unwrapped) => {
    const plain = plainSession(3);
    const sent = wrap(plain);
    const response = await upload('view.cxs', sent);
    expect(response.status).toBe(201);
    const { structure } = response.body;
    // gzip is a transport wrapper molvault unwraps (like .pdb.gz); LZ4 is how ChimeraX stores sessions, kept as sent.
    const stored = unwrapped ? plain : sent;
    expect(structure).toMatchObject({ kind: 'session', currentVersion: { format: 'cxs', size: stored.length } });
    expect(structure.currentVersion.summary.session).toEqual({ version: 3, compression, bytes: stored.length });
    const download = await api.raw(`/v1/structures/${structure.id}/download`);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(stored)).toBe(true);
  });

  it('refuses to convert a session, and to make one from a structure', async () => {
    const response = await upload('view.cxs', Buffer.from(lz4Frame(plainSession())));
    const id = response.body.structure.id;
    const converted = await api.get(`/v1/structures/${id}/download?format=pdb`);
    expect(converted.status).toBe(415);
    expect(converted.body.error).toMatchObject({ code: 'session_not_convertible', message: expect.stringContaining('cannot be converted') });
    const pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
    const structure = await upload('1crn.pdb', pdb);
    const toSession = await api.get(`/v1/structures/${structure.body.structure.id}/download?format=cxs`);
    expect(toSession.status).toBe(415);
    expect(toSession.body.error.code).toBe('session_not_convertible');
  });

  it('refuses a file that claims .cxs but is not a session, and leaves nothing behind', async () => {
    const owner = await userFactory(stack.ctx);
    const ownApi = client(stack.url, owner.token);
    const project = (await ownApi.post('/v1/projects', { name: 'not sessions' })).body.id;
    const send = (name: string, content: Uint8Array, fields: Record<string, string> = {}) =>
      ownApi.upload(`/v1/projects/${project}/structures`, { name, content }, fields, { prefer: 'wait=30' });
    const pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));

    const byExtension = await send('view.cxs', pdb);
    expect(byExtension.status).toBe(415);
    expect(byExtension.body.error).toMatchObject({ code: 'not_a_session', message: expect.stringContaining('content is PDB, not a session') });

    const byField = await send('crambin.pdb', pdb, { format: 'cxs' });
    expect(byField.status).toBe(415);
    expect(byField.body.error.code).toBe('not_a_session');

    const lz4NotSession = await send('view.cxs', lz4Frame(pdb));
    expect(lz4NotSession.status).toBe(422);
    expect(lz4NotSession.body.error).toMatchObject({ code: 'invalid_session', message: expect.stringContaining('not a ChimeraX session') });

    const gzNotSession = await send('view.cxs.gz', gzipSync(pdb));
    expect(gzNotSession.status).toBe(415);
    expect(gzNotSession.body.error.code).toBe('not_a_session');

    expect(await leftovers(stack.ctx, owner.id)).toMatchObject({ structures: 0, versions: 0, tempFiles: 0, stagingEntries: 0 });
  });
});
