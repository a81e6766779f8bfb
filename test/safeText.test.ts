import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStructure, parseStructureBytes } from '../src/formats/parse.js';
import { COORDINATE_LIMIT_ANGSTROM, escapeControlCharacters, withoutControlCharacters } from '../src/formats/safeText.js';
import type { ParseOutcome } from '../src/formats/types.js';

const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, 'fixtures', name), 'latin1');
const bytes = (text: string) => Buffer.from(text, 'latin1');
/** What Postgres would refuse in a jsonb value, and the other C0 controls. */
const UNSAFE = /\\u000[0-8bc]|\\u00[01][0-9a-f]|\\u007f/i;
const stored = (outcome: ParseOutcome) => JSON.stringify(outcome).replace(/\\u000[9ad]/gi, '');

const hetatm = (serial: number, resName: string, x = 1.5) =>
  `HETATM${String(serial).padStart(5)}  C1  ${resName.padEnd(3)} A 101    ${x.toFixed(3).padStart(8)}   0.000   0.000  1.00 20.00           C  `;

describe('text from files is made safe before it is stored', () => {
  it('removes control characters from free text (a PDB title, an SDF title) and says so', async () => {
    const pdb = fixture('ngl_1crn.pdb').replace(/^TITLE .*/m, 'TITLE     CRAM\x01BIN\x1b WITH CONTROL BYTES');
    const sdf = `aspirin\x07\x1b[31m${fixture('chemfiles_aspirin.sdf').slice(fixture('chemfiles_aspirin.sdf').indexOf('\n'))}`;
    for (const [text, format, title] of [
      [pdb, 'pdb', 'CRAMBIN WITH CONTROL BYTES'],
      [sdf, 'sdf', 'aspirin[31m'],
    ] as const) {
      for (const outcome of [await parseStructureBytes(bytes(text), format), await parseStructure(text, format)]) {
        expect(outcome.ok, JSON.stringify(outcome.report)).toBe(true);
        if (!outcome.ok) continue;
        expect(outcome.summary.title?.startsWith(title)).toBe(true);
        expect(outcome.report.warnings.map((w) => w.code)).toContain('control_characters_removed');
        expect(stored(outcome)).not.toMatch(UNSAFE);
      }
    }
  });

  it('refuses a NUL byte in a text format with its line, whatever field holds it (residue name, chain id, SDF title)', async () => {
    const pdb = fixture('ngl_1crn.pdb');
    const atomLine = pdb.split('\n').findIndex((l) => l.startsWith('ATOM')) + 1;
    const cases: [string, 'pdb' | 'sdf' | 'mol2' | 'cif' | 'xyz', number][] = [
      [pdb.replace('ATOM      1  N   THR A', 'ATOM      1  N   T\0R A'), 'pdb', atomLine],
      [pdb.replace('ATOM      1  N   THR A', 'ATOM      1  N   THR \0'), 'pdb', atomLine],
      [`\0${fixture('chemfiles_aspirin.sdf')}`, 'sdf', 1],
      [fixture('chemfiles_imatinib.mol2').replace('@<TRIPOS>ATOM', '@<TRIPOS>ATOM\0'), 'mol2', 0],
      [fixture('ngl_1CRN.cif').replace('THR A 1 1', 'T\0R A 1 1'), 'cif', 0],
      ['3\nwater\0\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n', 'xyz', 2],
    ];
    for (const [text, format, line] of cases) {
      for (const outcome of [await parseStructureBytes(bytes(text), format), await parseStructure(text, format)]) {
        expect(outcome.ok).toBe(false);
        if (outcome.ok) continue;
        expect(outcome.status).toBe(422);
        expect(outcome.report.problems[0].code).toBe('nul_byte');
        const expected = line || text.slice(0, text.indexOf('\0')).split('\n').length;
        expect(outcome.report.problems[0].line).toBe(expected);
        expect(outcome.message).toContain(`Line ${expected}`);
        expect(stored(outcome)).not.toMatch(UNSAFE);
      }
    }
  });

  it('refuses a control character in a stored identifier (a ligand residue name) with the line holding it', async () => {
    const pdb = fixture('ngl_1crn.pdb').replace(/^END/m, `${hetatm(900, 'H\x01M')}\nEND`);
    const line = pdb.split('\n').findIndex((l) => l.includes('H\x01M')) + 1;
    const outcome = await parseStructureBytes(bytes(pdb), 'pdb');
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.report.problems.at(-1)).toMatchObject({ code: 'control_characters', line });
    expect(outcome.message).toContain('H\\x01M');
    expect(stored(outcome)).not.toMatch(UNSAFE);
  });

  it(`refuses coordinates beyond ${COORDINATE_LIMIT_ANGSTROM} Å with the line, warns past 100,000 Å, refuses NaN`, async () => {
    const cif = fixture('ngl_1CRN.cif');
    const lines = cif.split('\n');
    const at = lines.findIndex((l) => l.startsWith('ATOM'));
    const withX = (x: string) => [...lines.slice(0, at), lines[at].replace('17.047', x), ...lines.slice(at + 1)].join('\n');
    const huge = await parseStructureBytes(bytes(withX('4.4e23')), 'cif');
    expect(huge.ok).toBe(false);
    if (!huge.ok) {
      expect(huge.report.problems.at(-1)).toMatchObject({ code: 'coordinates_out_of_range', line: at + 1 });
      expect(huge.message).toMatch(/4\.40e\+23 Å/);
    }
    const far = await parseStructureBytes(bytes(withX('200000.0')), 'cif');
    expect(far.ok).toBe(true);
    expect(far.report.warnings.map((w) => w.code)).toContain('absurd_coordinates');
    const pdb = fixture('ngl_1crn.pdb').replace(/^END/m, `${hetatm(900, 'HEM', 1e7)}\nEND`);
    const hugePdb = await parseStructureBytes(bytes(pdb), 'pdb');
    expect(hugePdb.ok).toBe(false);
    for (const bad of ['nan', 'inf', 'abc']) {
      const nan = await parseStructureBytes(bytes(withX(bad)), 'cif');
      expect(nan.ok).toBe(false);
      if (!nan.ok) expect(nan.message).toContain(`"${bad}"`);
      const crambin = fixture('ngl_1crn.pdb');
      const nanPdb = await parseStructureBytes(bytes(crambin.replace('  17.047', bad.padStart(8))), 'pdb');
      expect(nanPdb.ok).toBe(false);
      if (!nanPdb.ok)
        expect(nanPdb.report.problems[0]).toMatchObject({
          code: 'coordinates_not_numbers',
          line: crambin.split('\n').findIndex((l) => l.startsWith('ATOM')) + 1,
        });
    }
    const cut = fixture('ngl_1crn.pdb').replace(/^(ATOM {6}1 .{30}).*$/m, '$1');
    const cutOutcome = await parseStructureBytes(bytes(cut), 'pdb');
    expect(cutOutcome.ok).toBe(false);
  });

  it('escapes control characters in messages and strips them from names', () => {
    expect(escapeControlCharacters('a\x00b\x1bc\td')).toBe('a\\x00b\\x1bc\td');
    expect(withoutControlCharacters('a\x00b\x7fc\r\n')).toBe('abc\r\n');
  });
});
