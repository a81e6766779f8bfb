/**
 * A large upload parsed while it arrives (api/intake/receipt.ts, PARSE_ON_RECEIPT): the API
 * records the parse with the upload, the validate stage finds it done, and the version keeps the
 * same summary, kind and report the validate stage would have made, the format's warning first.
 * A parse the content's format contradicts is not kept; a file the parse finds unsound is refused
 * by the validate stage with its reasons, as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARSE_ON_RECEIPT_MIN_BYTES } from '../src/api/intake/receipt.js';
import { parseStructureBytes } from '../src/formats/parse.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/** A PDB file of `lines` atoms in residues of four, past the size parsed on receipt. */
function largePdb(lines: number, tag = '', extra = ''): Buffer {
  const line = (i: number) =>
    `ATOM  ${String((i % 99999) + 1).padStart(5)}  CA  ALA A${String((Math.floor(i / 4) % 9999) + 1).padStart(4)}    ${(i % 1000).toFixed(3).padStart(8)}${((i * 7) % 1000).toFixed(3).padStart(8)}${((i * 13) % 1000).toFixed(3).padStart(8)}  1.00 20.00           C  \n`;
  return Buffer.from(`HEADER    RECEIPT TEST ${tag}\n${Array.from({ length: lines }, (_, i) => line(i)).join('')}${extra}END\n`, 'latin1');
}

describe('an upload parsed while it arrives', () => {
  let stack: Stack;
  let api: Client;
  let projectId: string;
  const validateResult = async (uploadId: string) => (await stack.ctx.queues.validate.getJob(`validate-${uploadId}`))?.returnvalue;
  const row = async (uploadId: string) =>
    (
      await stack.ctx.orm.em
        .fork()
        .execute<{ summary: unknown; kind: string; validation: { parser: string; warnings: { code: string }[] } }[]>(
          'select v.summary, u.kind, v.validation from uploads u join structure_versions v on v.structure_id = u.structure_id and v.number = u.version where u.id = ?',
          [uploadId],
        )
    )[0];

  beforeAll(async () => {
    stack = await startStack();
    api = client(stack.url, (await userFactory(stack.ctx)).token);
    projectId = (await api.post('/v1/projects', { name: 'receipt' })).body.id;
  }, 120_000);
  afterAll(() => stack?.stop());

  it('is stored with the summary validation would make, without a second parse', async () => {
    const bytes = largePdb(70_000, 'A');
    expect(bytes.length).toBeGreaterThan(PARSE_ON_RECEIPT_MIN_BYTES);
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'big.pdb', content: bytes }, {}, { prefer: 'wait=60' });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const uploadId = response.body.upload.id as string;
    expect(await validateResult(uploadId)).toEqual({ skipped: 'already validated' });
    const reference = await parseStructureBytes(bytes, 'pdb');
    if (!reference.ok) throw new Error('the reference parse refused the file');
    const stored = await row(uploadId);
    expect(stored.summary).toEqual(reference.summary);
    expect(stored.kind).toBe(reference.kind);
    expect({ ...stored.validation, parseMs: 0 }).toEqual({ ...reference.report, parseMs: 0 });
  }, 120_000);

  it('puts the format’s warning first, as validation does', async () => {
    const bytes = largePdb(70_000, 'B');
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'big.sdf', content: bytes }, {}, { prefer: 'wait=60' });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const id = response.body.upload.id as string;
    expect(await validateResult(id)).toEqual({ skipped: 'already validated' });
    const stored = await row(id);
    expect(stored.validation.warnings[0].code).toBe('extension_mismatch');
    const reference = await parseStructureBytes(bytes, 'pdb');
    expect(stored.validation.warnings.slice(1)).toEqual(reference.report.warnings);
  }, 120_000);

  it('refuses an unsound file in the validate stage, and a format the upload contradicts in ingest', async () => {
    // Coordinates that are no numbers, past the first part.
    const bad = largePdb(70_000, 'C', 'ATOM  99999  CA  ALA B   1         abc     1.000   1.000  1.00 20.00           C  \n');
    const refused = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'bad.pdb', content: bad }, {}, { prefer: 'wait=60' });
    expect(refused.status, JSON.stringify(refused.body)).toBe(422);
    const declared = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'big.pdb', content: largePdb(70_000, 'D') },
      { format: 'sdf' },
      { prefer: 'wait=60' },
    );
    expect(declared.status, JSON.stringify(declared.body)).toBe(415);
    expect(declared.body.error.code).toBe('format_mismatch');
  }, 120_000);
});
