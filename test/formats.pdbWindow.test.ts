/**
 * The PDB reader through a window (readPdbAtomsFromFile, parse.ts parsePdbFile) against the reader
 * of the whole file (readPdbAtoms, parseStructureBytes, which the reference comparison covers):
 * the same atoms and the same outcome wherever the windows' ends fall (inside a line, inside a
 * hybrid-36 serial, between a carriage return and its line feed, inside a header record the
 * resolution is read across, past a line longer than the window), and for files without a final
 * newline. Where the window path gives no answer, the parse task reads the file whole: its
 * outcome is then the whole read's.
 */
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePdbFile, parseStructureBytes } from '../src/formats/parse.js';
import { atomOrder, type PdbAtoms, readPdbAtoms, readPdbAtomsFromFile, WINDOW_BYTES } from '../src/formats/pdbFast.js';
import { coordinateInto, fieldFloat } from '../src/formats/pdbScan.js';
import type { ParseOutcome } from '../src/formats/types.js';
import { parse } from '../src/pool/tasks.js';
import { CORPUS, corpusContent, hasCorpus, withCrlf } from './helpers/corpus.js';

const comparable = (outcome: ParseOutcome | undefined) => outcome && { ...outcome, report: { ...outcome.report, parseMs: 0 } };

const ARRAYS = ['lineStart', 'lineLength', 'x', 'y', 'z', 'element', 'residueOffsets', 'chainOffsets', 'atomKeys', 'residueComp'] as const;

function sameAtoms(windowed: PdbAtoms, whole: PdbAtoms, label: string) {
  for (const key of ARRAYS) {
    const a = windowed[key];
    const b = whole[key];
    expect(a === undefined ? undefined : Array.from(a), `${label}: ${key}`).toEqual(b === undefined ? undefined : Array.from(b));
  }
  // Mol*'s order, atom by atom.
  const order = (atoms: PdbAtoms) => (atoms.order ? Array.from(atomOrder(atoms.order)) : undefined);
  expect(order(windowed), `${label}: order`).toEqual(order(whole));
  expect(windowed.head, `${label}: head`).toEqual(whole.head);
  const rest = (atoms: PdbAtoms) => {
    const { bytes: _bytes, source: _source, componentName: _names, head: _head, ...others } = atoms;
    for (const key of [...ARRAYS, 'order'] as const) delete (others as Partial<PdbAtoms>)[key];
    return others;
  };
  expect(rest(windowed), label).toEqual(rest(whole));
  for (const comp of whole.compNames) expect(windowed.componentName(comp), `${label}: name of ${comp}`).toBe(whole.componentName(comp));
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-pdbwindow-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

let written = 0;
async function onDisk(bytes: Buffer): Promise<string> {
  const file = path.join(dir, `f${written++}.pdb`);
  await fs.writeFile(file, bytes);
  return file;
}

/**
 * Reads `bytes` through windows of each size in `windows`: the same atoms and outcome as the whole
 * read whenever the window path answers. Returns how many sizes it answered for.
 */
async function expectSameThroughWindows(bytes: Buffer, windows: number[], label: string): Promise<number> {
  const file = await onDisk(bytes);
  const whole = readPdbAtoms(bytes);
  const expected = comparable(await parseStructureBytes(bytes, 'pdb'));
  // The parse task: the window path, or the whole read where it gives no answer.
  expect(comparable(await parse({ path: file, format: 'pdb' })), `${label}: the parse task`).toEqual(expected);
  let answered = 0;
  const fd = openSync(file, 'r');
  try {
    for (const window of windows) {
      const where = `${label}, window of ${window} bytes`;
      let atoms: PdbAtoms | undefined;
      expect(() => {
        atoms = readPdbAtomsFromFile(fd, bytes.length, window);
      }, where).not.toThrow();
      if (atoms) {
        expect(whole, `${where}: the whole read reads it too`).toBeDefined();
        if (whole) sameAtoms(atoms, whole, where);
      }
      const outcome = parsePdbFile(fd, bytes.length, window);
      if (outcome) {
        answered++;
        expect(comparable(outcome), where).toEqual(expected);
      }
    }
  } finally {
    closeSync(fd);
  }
  return answered;
}

const range = (from: number, to: number, step = 1) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, k) => from + k * step);

/**
 * A small file with something at every kind of place a window may end: header records the summary
 * reads (the resolution over two lines), SEQRES, HETNAM and COMPND blocks, hybrid-36 serials, atom
 * records without an element (the summary reads their names back), a repeated atom (its message
 * quotes the name, residue and chain), a component of unknown type (typed from its atoms' names),
 * TER records, waters and a REMARK line longer than most windows below.
 */
function sample(): string {
  const lines = [
    'HEADER    TRANSFERASE                             07-DEC-26   9XYZ              ',
    'TITLE     A SAMPLE FOR WINDOW ENDS, WITH A TITLE THAT RUNS ON FOR A WHILE',
    'TITLE    2 AND A SECOND LINE',
    'EXPDTA    X-RAY DIFFRACTION',
    'REMARK   2 RESOLUTION.',
    '   2.35 ANGSTROMS.',
    `REMARK 999 ${'LONG '.repeat(90)}`,
    'COMPND    MOL_ID: 1;',
    'COMPND   2 MOLECULE: SAMPLE PROTEIN;',
    'COMPND   3 CHAIN: A, B;',
    'SEQRES   1 A    4  MET ALA GLY SER',
    'SEQRES   1 B    3  GLY LYS SER',
    'HETNAM     XYZ AN UNUSUAL LIGAND',
  ];
  let serial = 1;
  const atom = (record: string, name: string, comp: string, chain: string, seq: number, x: number, element: string, serialText?: string) => {
    const s = (serialText ?? String(serial++)).padStart(5);
    const n = name.length < 4 ? ` ${name}`.padEnd(4) : name;
    const coords = [x, -x / 2, x * 1.5].map((v) => v.toFixed(3).padStart(8)).join('');
    return `${record.padEnd(6)}${s} ${n} ${comp.padStart(3)} ${chain}${String(seq).padStart(4)}    ${coords}  1.00 20.00          ${element.padStart(2)}`;
  };
  const residues: [string, string[]][] = [
    ['MET', ['N', 'CA', 'C', 'O', 'CB', 'SD']],
    ['ALA', ['N', 'CA', 'C', 'O', 'CB']],
    ['GLY', ['N', 'CA', 'C', 'O']],
    ['SER', ['N', 'CA', 'C', 'O', 'OG']],
  ];
  let x = 1;
  const along = (step: number) => {
    x += step;
    return x;
  };
  residues.forEach(([comp, names], r) => {
    for (const name of names) lines.push(atom('ATOM', name, comp, 'A', r + 1, along(1.1), name[0]));
  });
  // The same name twice in a residue (a duplicate the summary quotes).
  lines.push(atom('ATOM', 'OG', 'SER', 'A', 4, along(1.1), 'O'));
  lines.push('TER');
  // Hybrid-36 serials (columns 7-11), as writers give them past 99,999 atoms; no element columns (guessed from the name).
  const hybrid = ['A0000', 'A0001', 'A0002', 'A0003', 'A0004', 'A0005', 'A0006', 'A0007', 'A0008', 'A0009', 'A000A', 'A000B'];
  let h = 0;
  for (const [r, [comp, names]] of [
    ['GLY', ['N', 'CA', 'C', 'O']] as const,
    ['LYS', ['N', 'CA', 'C', 'O', 'NZ']] as const,
    ['SER', ['N', 'CA', 'C']] as const,
  ].entries())
    for (const name of names) lines.push(atom('ATOM', name, comp, 'B', r + 1, along(0.7), '', hybrid[h++ % hybrid.length]));
  lines.push('TER');
  for (const name of ['C1', 'C2', 'O3', 'N4']) lines.push(atom('HETATM', name, 'XYZ', 'A', 101, along(0.9), ''));
  for (let w = 0; w < 6; w++) lines.push(atom('HETATM', 'O', 'HOH', 'A', 201 + w, along(0.5), 'O'));
  lines.push('END');
  return `${lines.join('\n')}\n`;
}

describe('the PDB reader through a window', () => {
  it('agrees with the whole read wherever the windows end (every size from 40 to 700 bytes)', async () => {
    const text = sample();
    expect(text.length).toBeGreaterThan(3000);
    const bytes = Buffer.from(text, 'latin1');
    // A window shorter than the longest line grows for it. One that ends where the resolution's
    // pattern reads on from its line leaves the file to the whole read; past it, every size answers.
    expect(text.indexOf('ANGSTROMS')).toBeLessThan(600);
    expect(await expectSameThroughWindows(bytes, range(40, 599), 'sample')).toBeGreaterThan(400);
    expect(await expectSameThroughWindows(bytes, [...range(600, 700), 4096, 1 << 20], 'sample')).toBe(range(600, 700).length + 2);
  }, 120_000);

  it('agrees with CRLF line ends, a window ending between a carriage return and its line feed', async () => {
    const bytes = withCrlf(Buffer.from(sample(), 'latin1'));
    expect(await expectSameThroughWindows(bytes, range(40, 599), 'CRLF')).toBeGreaterThan(400);
    expect(await expectSameThroughWindows(bytes, range(600, 700), 'CRLF')).toBe(range(600, 700).length);
  }, 120_000);

  it('agrees on a file without a final newline, and one cut inside an atom record', async () => {
    const text = sample();
    expect(await expectSameThroughWindows(Buffer.from(text.trimEnd(), 'latin1'), range(40, 400, 3), 'no final newline')).toBeGreaterThan(0);
    const cut = text.slice(0, text.lastIndexOf('HETATM') + 40);
    // Too short an atom record: the whole read declines it to the reference; so does the window path.
    expect(await expectSameThroughWindows(Buffer.from(cut, 'latin1'), range(40, 400, 7), 'cut mid-record')).toBe(0);
    const windowsCrlf = await expectSameThroughWindows(withCrlf(Buffer.from(text.trimEnd(), 'latin1')), range(40, 400, 3), 'CRLF, no final newline');
    expect(windowsCrlf).toBeGreaterThan(0);
  }, 120_000);

  it('leaves to the whole read a lone carriage return, a NUL byte, MODEL records it cannot number: the parse task answers as the whole read', async () => {
    const text = sample();
    const variants = {
      'lone carriage return': text.replace('TER\n', 'TER\r'),
      'carriage return as the last byte': `${text}\r`,
      'NUL byte': text.replace('EXPDTA', 'EXPD\u0000A'),
      'numberless MODEL records past the first window': `MODEL\n${text.replace('END\n', 'ENDMDL\nMODEL\n')}${text.slice(text.indexOf('ATOM'))}ENDMDL\n`,
    };
    for (const [name, variant] of Object.entries(variants)) {
      expect(await expectSameThroughWindows(Buffer.from(variant, 'latin1'), [64, 333, 1 << 20], name), name).toBeLessThan(3);
    }
    // Numberless MODEL records in a file one window holds: answered (the ENDMDL search has the text).
    const models = `MODEL\n${text.replace('END\n', 'ENDMDL\n')}`;
    await expectSameThroughWindows(Buffer.from(models, 'latin1'), [64, 1 << 20], 'numberless MODEL, one window');
  }, 120_000);

  it('keeps the header fields when the resolution runs over lines near a window end', async () => {
    const text = sample();
    // The resolution's pattern reads past its line; each window end across it either holds it all or leaves the file to the whole read.
    const resolutionAt = text.indexOf('REMARK   2 RESOLUTION.');
    const windows = range(resolutionAt - 40, resolutionAt + 60);
    await expectSameThroughWindows(Buffer.from(text, 'latin1'), windows, 'resolution over two lines');
    const onOneLine = text.replace('REMARK   2 RESOLUTION.\n   2.35', 'REMARK   2 RESOLUTION.  2.35');
    expect(await expectSameThroughWindows(Buffer.from(onOneLine, 'latin1'), windows, 'resolution on one line')).toBe(windows.length);
  }, 120_000);

  it('agrees on a file larger than the window, whose start is read in shorter windows (with a line longer than those)', async () => {
    const text = sample();
    const header = text.slice(0, text.indexOf('ATOM'));
    const atoms = text.slice(text.indexOf('ATOM'), text.indexOf('END\n'));
    const copies = Math.ceil((10 << 20) / atoms.length);
    const long = `REMARK 999 ${'X'.repeat(100_000)}\n`;
    const body = Array.from({ length: copies }, (_, k) => (k === Math.floor(copies / 20) ? long + atoms : atoms)).join('');
    const bytes = Buffer.from(`${header}${body}END\n`, 'latin1');
    expect(bytes.length).toBeGreaterThan(WINDOW_BYTES * 2);
    expect(await expectSameThroughWindows(bytes, [WINDOW_BYTES, 1 << 20], 'large')).toBe(2);
  }, 120_000);

  it.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent */)(
    'agrees on every PDB file of the corpus through windows of several sizes, and answers for all but those the whole read refuses or rewrites (skipped when ../shared/corpus is absent)',
    async () => {
      const names = (await fs.readdir(path.join(CORPUS, 'pdb'))).sort();
      let answered = 0;
      for (const name of names) {
        const bytes = await corpusContent(`pdb/${name}`);
        const windows = bytes.length > 2e6 ? [1 << 20, 4 << 20] : [997, 65_536, 4 << 20];
        if ((await expectSameThroughWindows(bytes, windows, name)) === windows.length) answered++;
      }
      expect(answered).toBeGreaterThan(names.length - 6);
    },
    300_000,
  );
});

describe('coordinates as the scan reads them', () => {
  it('every 8-column field of blanks, signs, digits, points, exponents and junk reads as Mol*’s parser reads it (or fails the check before reading)', () => {
    const before = [' ', '-', '+', '.', '0', '1', '7', '9', 'e', 'x'];
    const after = ['000', '123', '999', '05 ', ' 12', '.12', 'e1 ', '1e2', 'x00', '-00'];
    const point = ['.', '5', ' '];
    const number = (c: string) => ' .-+eE0123456789'.includes(c);
    const into = new Float32Array(1);
    let fast = 0;
    for (let k = 0; k < before.length ** 4; k++) {
      const head = [0, 1, 2, 3].map((d) => before[Math.floor(k / before.length ** d) % before.length]).join('');
      for (const p of point) {
        for (const tail of after) {
          const field = `${head}${p}${tail}`;
          const bytes = Buffer.from(field, 'latin1');
          into[0] = Number.NaN;
          const read = coordinateInto(bytes, 0, into, 0);
          const passes = [...field].every(number) && /[0-9]/.test(field);
          expect(read, JSON.stringify(field)).toBe(passes);
          if (read) {
            expect(Object.is(into[0], Math.fround(fieldFloat(bytes, 0, 8))), `${JSON.stringify(field)}: ${into[0]}`).toBe(true);
            if (/^ *-?[0-9]+$/.test(head) && p === '.' && /^[0-9]{3}$/.test(tail)) fast++;
          }
        }
      }
    }
    expect(fast).toBeGreaterThan(1000);
  });
});
