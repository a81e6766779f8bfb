import { describe, expect, it } from 'vitest';
import { utf8Bytes } from '../src/lib/bytes.js';

describe('utf8Bytes', () => {
  it('encodes pieces of text exactly as their join would be encoded, whatever characters they hold', () => {
    const pieces = ['{"items":[', '{"name":"Ångström α-helix 𝛃","highlights":', '["… <mark>kinase</mark> …"]', '', '}', ',{"name":"plain ASCII"}', ']}'];
    const bytes = utf8Bytes(pieces);
    expect(bytes.equals(Buffer.from(pieces.join(''), 'utf8'))).toBe(true);
    expect(JSON.parse(bytes.toString('utf8')).items[0].name).toBe('Ångström α-helix 𝛃');
    expect(utf8Bytes([]).length).toBe(0);
  });
});
