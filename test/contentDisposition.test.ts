import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachment } from '../src/api/http/download.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/** RFC 6266 download names: an ASCII fallback that is safe as it is, and the exact name as filename*. */
const FALLBACK = /^attachment; filename="([\x20-\x7e]*)"; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]*)$/;

function parts(header: string) {
  const match = FALLBACK.exec(header);
  if (!match) throw new Error(`not an RFC 6266 attachment header: ${JSON.stringify(header)}`);
  return { fallback: match[1], exact: decodeURIComponent(match[2]) };
}

describe('Content-Disposition', () => {
  it.each([
    ['a plain name', '1crn.pdb', '1crn.pdb', '1crn.pdb'],
    ['a bidi override (U+202E)', 'evil\u202Egpj.pdb', 'evilgpj.pdb', 'evilgpj.pdb'],
    ['other bidi controls', '\u2066a\u200fb\u061c.cif', 'ab.cif', 'ab.cif'],
    ['quotes and non-ASCII', 'Müller "α".pdb', 'Muller ___.pdb', 'Müller "α".pdb'],
    ['CR/LF (header injection)', 'a\r\nSet-Cookie: x=1.pdb', 'aSet-Cookie: x=1.pdb', 'aSet-Cookie: x=1.pdb'],
    ['control characters', 'a\u0000b\u0007c\u007fd\u0085.pdb', 'abcd.pdb', 'abcd.pdb'],
    ['path separators', '../..\\etc/passwd.pdb', '_.._etc_passwd.pdb', '_.._etc_passwd.pdb'],
    ['a name in another script', '日本語.cif', '___.cif', '日本語.cif'],
    ['nothing left', '\u202E\r\n', 'download', 'download'],
  ])('makes %s safe', (_what, name, fallback, exact) => {
    const header = attachment(name);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are what must not get through
    expect(header).not.toMatch(/[\r\n\u0000\u202e]/);
    expect(parts(header)).toEqual({ fallback, exact });
  });

  describe('on a real download', () => {
    let stack: Stack;
    let api: Client;
    beforeAll(async () => {
      stack = await startStack();
      const user = await userFactory(stack.ctx);
      api = client(stack.url, user.token);
    });
    afterAll(() => stack?.stop());

    it('sends a stored file name with bidi controls and non-ASCII as RFC 6266 says', async () => {
      const projectId = (await api.post('/v1/projects', { name: 'names' })).body.id;
      const pdb = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'));
      const stored = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'Ångström\u202Egpj.pdb', content: pdb }, {}, { prefer: 'wait=30' });
      expect(stored.status).toBe(201);
      const response = await api.raw(`/v1/structures/${stored.body.structure.id}/download`);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      expect(parts(response.headers.get('content-disposition') as string)).toEqual({ fallback: 'Angstromgpj.pdb', exact: 'Ångströmgpj.pdb' });
    });
  });
});
