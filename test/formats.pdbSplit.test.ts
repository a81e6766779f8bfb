/**
 * The PDB reader with its scan cut into parts (readPdbAtomsSplit / readPdbAtomsCut, pdbFast.ts;
 * scanChunk and joinChunk, pdbScan.ts) against the same reader scanning the whole file at once:
 * the same atoms (every array and map the summary and the diff read), the same decline, and the
 * same parse outcome, for every corpus PDB file (gzipped ones unpacked) and altered copies of them,
 * cut into many small parts so that parts start inside chains, after TER records, among
 * HETATM and water records, with header records (HETNAM, SEQRES, COMPND, HEADER) after the atoms,
 * in files with several models or frames (whose later parts cannot be read on their own and are
 * scanned in order instead), and at every possible place in small files. Each part is scanned on
 * its own and passed through structuredClone, as a result coming back from another thread is.
 * The large synthetic PDB (2.17 M atoms, 2-character chain ids, hybrid-36 serials) is cut too.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parsePdbFast, parsePdbFastSplit, parseStructureBytes } from '../src/formats/parse.js';
import { atomOrder, type ChunkScanner, lastDecline, type PdbAtoms, readPdbAtoms, readPdbAtomsCut, readPdbAtomsSplit } from '../src/formats/pdbFast.js';
import { type ChunkStart, chunkStarts, scanChunk } from '../src/formats/pdbScan.js';
import type { ParseOutcome } from '../src/formats/types.js';
import { partsScannedByHelpers } from '../src/pool/scanHelpers.js';
import { parse, splitPdbFrom } from '../src/pool/tasks.js';
import { atomsReversed, CORPUS, hasCorpus, withCrlf } from './helpers/corpus.js';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');

async function content(file: string): Promise<Buffer> {
  const bytes = await fs.readFile(file);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

/** Scans each part in this thread, its result cloned as a message between threads would be; counts the parts it scanned. */
function clonedScanner(bytes: Uint8Array, scanned: { parts: number; independent: number }): ChunkScanner {
  return async (from, to, prevLine, minLineLength) => {
    const chunk = scanChunk(bytes, from, to, prevLine, minLineLength);
    scanned.parts++;
    if (chunk.why === '') scanned.independent++;
    return structuredClone(chunk);
  };
}

/** Typed arrays compared byte for byte (deep equality over millions of elements is slow). */
function sameBytes(a: ArrayBufferView | undefined, b: ArrayBufferView | undefined, label: string) {
  if (!a || !b) {
    expect(a, label).toEqual(b);
    return;
  }
  expect(a.constructor, label).toBe(b.constructor);
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), label).toBe(true);
}

/** Every field of two readings, the component names through the function that gives them. */
function expectSameAtoms(split: PdbAtoms | undefined, whole: PdbAtoms | undefined, label: string) {
  if (!split || !whole) {
    expect(split, label).toEqual(whole);
    return;
  }
  const arrays = ['lineStart', 'lineLength', 'x', 'y', 'z', 'element', 'residueOffsets', 'chainOffsets', 'atomKeys', 'residueComp'] as const;
  for (const key of arrays) sameBytes(split[key], whole[key], `${label}: ${key}`);
  // Mol*'s order, atom by atom.
  sameBytes(split.order && atomOrder(split.order), whole.order && atomOrder(whole.order), `${label}: order`);
  // The header lines are kept by a scan of the whole file only (parse.ts reads them from the bytes otherwise).
  if (split.head) expect(split.head, label).toEqual(whole.head);
  const rest = (atoms: PdbAtoms) => {
    const { bytes: _bytes, source: _source, componentName: _names, head: _head, ...others } = atoms;
    for (const key of [...arrays, 'order'] as const) delete (others as Partial<PdbAtoms>)[key];
    return others;
  };
  expect(rest(split), label).toEqual(rest(whole));
  const comps = new Set<string>();
  for (let i = 0; i < whole.atomCount; i += 1 + Math.floor(whole.atomCount / 5000))
    comps.add(String.fromCharCode(...(whole.bytes as Uint8Array).subarray(whole.lineStart[i] + 17, whole.lineStart[i] + 20)).trim());
  for (const comp of comps) expect(split.componentName(comp), `${label}: name of ${comp}`).toBe(whole.componentName(comp));
}

const comparable = (outcome: ParseOutcome | undefined) => outcome && { ...outcome, report: { ...outcome.report, parseMs: 0 } };

/** The reading cut at `cuts` against the whole reading: atoms, decline and parse outcome. */
async function expectSameAt(bytes: Buffer, cuts: ChunkStart[], label: string, scanned = { parts: 0, independent: 0 }) {
  const whole = readPdbAtoms(bytes);
  const wholeDecline = lastDecline;
  const split = await readPdbAtomsCut(bytes, clonedScanner(bytes, scanned), cuts);
  expect(lastDecline, `${label}: decline`).toBe(wholeDecline);
  expectSameAtoms(split, whole, label);
}

/** The same, cut by chunkStarts into about `parts` parts, and the parse outcomes too. */
async function expectSameSplit(bytes: Buffer, parts: number, label: string, scanned = { parts: 0, independent: 0 }) {
  const whole = readPdbAtoms(bytes);
  const wholeDecline = lastDecline;
  const split = await readPdbAtomsSplit(bytes, clonedScanner(bytes, scanned), parts, 1);
  expect(lastDecline, `${label}: decline`).toBe(wholeDecline);
  expectSameAtoms(split, whole, label);
  const outcome = await parsePdbFastSplit(bytes, { scanner: clonedScanner(bytes, { parts: 0, independent: 0 }), parts, minBytes: 1 });
  expect(comparable(outcome), `${label}: outcome`).toEqual(comparable(parsePdbFast(bytes)));
}

/** The records before the first atom moved after the last one (HETNAM, SEQRES, COMPND, HEADER in a later part). */
function headerLast(bytes: Buffer): Buffer {
  const lines = bytes.toString('latin1').split('\n');
  const first = lines.findIndex((l) => l.startsWith('ATOM  ') || l.startsWith('HETATM'));
  if (first <= 0) return bytes;
  const end = lines.findIndex((l) => l.startsWith('END') && !l.startsWith('ENDMDL'));
  const at = end > first ? end : lines.length;
  return Buffer.from([...lines.slice(first, at), ...lines.slice(0, first), ...lines.slice(at)].join('\n'), 'latin1');
}

/** Every line start after an atom record, with that record (the cuts joinChunk can take); and every other line start. */
function everyCut(bytes: Buffer): { joinable: ChunkStart[]; other: ChunkStart[] } {
  const joinable: ChunkStart[] = [];
  const other: ChunkStart[] = [];
  let prev = -1;
  let prevAtom = false;
  for (let s = 0; s < bytes.length; ) {
    let nl = bytes.indexOf(10, s);
    if (nl < 0) nl = bytes.length;
    if (s > 0) (prevAtom ? joinable : other).push({ from: s, prevLine: prev });
    prevAtom = bytes.toString('latin1', s, s + 6) === 'ATOM  ' || bytes.toString('latin1', s, s + 6) === 'HETATM';
    prev = s;
    s = nl + 1;
  }
  return { joinable, other };
}

describe('the PDB reader with its scan cut into parts agrees with the whole scan', () => {
  it('on the fixtures cut at every line, one cut at a time (parts read on their own, and parts scanned in order)', async () => {
    for (const name of ['ngl_1crn.pdb', 'ngl_noChainNameTerRecords.pdb', 'ngl_multi-models-example.pdb', 'chemfiles_insertion-code.pdb']) {
      const bytes = await content(path.join(FIXTURES, name));
      const { joinable, other } = everyCut(bytes);
      expect(joinable.length, name).toBeGreaterThan(1);
      const scanned = { parts: 0, independent: 0 };
      for (const cut of [...joinable, ...other]) await expectSameAt(bytes, [cut], `${name} cut at byte ${cut.from}`, scanned);
      // Most cuts after an atom record could be read on their own (the others are scanned in order).
      if (name !== 'ngl_multi-models-example.pdb') expect(scanned.independent, name).toBeGreaterThan(joinable.length / 2);
      // A part read on its own, then one cut inside a residue (scanned in order after it).
      for (const cut of joinable) {
        for (const next of [...joinable, ...other].filter((c) => c.from > cut.from).slice(0, 3)) {
          await expectSameAt(bytes, [cut, next], `${name} cut at bytes ${cut.from} and ${next.from}`);
        }
      }
    }
  }, 300_000);

  it('on the fixtures cut into many parts at once, with CRLF line ends, atoms reversed and the header after the atoms', async () => {
    const names = (await fs.readdir(FIXTURES)).filter((n) => /\.pdb(\.gz)?$/.test(n));
    for (const name of names) {
      const bytes = await content(path.join(FIXTURES, name));
      for (const [variant, altered] of [
        ['as is', bytes],
        ['CRLF', withCrlf(bytes)],
        ['reversed', atomsReversed(bytes)],
        ['header last', headerLast(bytes)],
      ] as const) {
        for (const parts of [2, 5, 40]) await expectSameSplit(altered, parts, `${name} (${variant}) in ${parts} parts`);
      }
    }
  }, 300_000);

  it('on files the reader declines or leaves to the MODEL rewrite, and on parts that cannot be read on their own', async () => {
    const atom = (serial: number, name: string, res: string, chain: string, seq: number, x: number) =>
      `ATOM  ${String(serial).padStart(5)} ${name.padEnd(4)} ${res} ${chain}${String(seq).padStart(4)}    ${x.toFixed(3).padStart(8)}   2.000   3.000  1.00  0.00           ${name[0]}`;
    const residues = (chain: string, count: number, from = 1) =>
      Array.from({ length: count }, (_, r) => [atom(r * 2 + 1, 'N', 'ALA', chain, from + r, r), atom(r * 2 + 2, 'CA', 'ALA', chain, from + r, r + 0.5)]).flat();
    const files: Record<string, string[]> = {
      'frames separated by END': [...residues('A', 6), 'END', ...residues('A', 6), 'END', ...residues('A', 6), 'END'],
      models: ['MODEL        1', ...residues('A', 6), 'ENDMDL', 'MODEL        2', ...residues('A', 6), 'ENDMDL', 'END'],
      'models without numbers': ['MODEL', ...residues('A', 6), 'ENDMDL', 'MODEL', ...residues('A', 6), 'ENDMDL'],
      'atoms after ENDMDL': ['MODEL        1', ...residues('A', 6), 'ENDMDL', ...residues('B', 6)],
      'a short atom line late': [...residues('A', 8), 'ATOM     99  CA  ALA A  99       1.000', ...residues('B', 3)],
      'a coordinate that is no number late': [...residues('A', 8), atom(99, 'CA', 'ALA', 'A', 99, 1).replace('   2.000', '     abc'), ...residues('B', 3)],
      'TER between chains and a repeated chain': [...residues('A', 4), 'TER', ...residues('B', 4), 'TER', ...residues('A', 4, 20)],
      'repeated names across a cut': [
        ...residues('A', 3),
        atom(50, 'CB', 'ALA', 'A', 4, 9),
        atom(51, 'CG', 'ALA', 'A', 4, 9.5),
        atom(52, 'CB', 'ALA', 'A', 4, 9.7),
        atom(53, 'CB', 'ALA', 'A', 4, 9.9),
        ...residues('B', 3),
      ],
      'HETNAM and SEQRES after the atoms': [
        ...residues('A', 5),
        'HETATM   90  C1  LIG A 100       1.000   2.000   3.000  1.00  0.00           C',
        'HETNAM     LIG SOME LIGAND',
        'SEQRES   1 A    5  ALA ALA ALA ALA ALA',
        'HEADER    LATE HEADER                             01-JAN-99   9XYZ',
        ...residues('B', 4),
      ],
      'a second SEQRES block and a second HEADER (blank id) after the atoms': [
        'HEADER    FIRST HEADER                            01-JAN-99   1ABC',
        'SEQRES   1 A    5  ALA ALA ALA ALA ALA',
        'SEQRES   1 B    4  ALA ALA ALA ALA',
        ...residues('A', 5),
        ...residues('B', 4),
        'SEQRES   1 A    2  GLY GLY',
        'HEADER    SECOND HEADER',
        ...residues('C', 3),
      ],
      'occupancy written only late': [...residues('A', 4).map((l) => `${l.slice(0, 54)}      ${l.slice(60)}`), ...residues('B', 4)],
      'no atoms after the header': ['HEADER    TEST', 'REMARK 350 BIOMOLECULE: 1', 'END'],
      'many element symbols': Array.from(
        { length: 300 },
        (_, k) => `${atom(k + 1, 'X', 'UNK', 'A', k + 1, k).slice(0, 76)}${String.fromCharCode(65 + (k % 26), 97 + Math.floor(k / 26))}`,
      ),
    };
    for (const [name, lines] of Object.entries(files)) {
      const bytes = Buffer.from(`${lines.join('\n')}\n`, 'latin1');
      const { joinable, other } = everyCut(bytes);
      for (const cut of [...joinable, ...other]) await expectSameAt(bytes, [cut], `${name} cut at byte ${cut.from}`);
      // Two cuts: a part read on its own, then any of the next lines (inside a residue, after TER, ...), scanned in order after it.
      const ordered = [...joinable, ...other].sort((a, c) => a.from - c.from);
      for (const cut of joinable) {
        for (const next of ordered.filter((c) => c.from > cut.from).slice(0, 12)) {
          await expectSameAt(bytes, [cut, next], `${name} cut at bytes ${cut.from} and ${next.from}`);
        }
      }
      for (const parts of [2, 3, 7, 20]) await expectSameSplit(bytes, parts, `${name} in ${parts} parts`);
    }
  }, 300_000);

  it('cuts only after an atom record of another residue, and into parts of at least the size asked', async () => {
    const bytes = await content(path.join(FIXTURES, 'chemfiles_4hhb.pdb.gz'));
    const cuts = chunkStarts(bytes, 16, 4096);
    expect(cuts.length).toBeGreaterThan(8);
    let last = 0;
    for (const cut of cuts) {
      expect(bytes.toString('latin1', cut.from, cut.from + 6)).toMatch(/^(ATOM {2}|HETATM)$/);
      expect(bytes.indexOf(10, cut.prevLine)).toBe(cut.from - 1);
      expect(cut.from - last).toBeGreaterThanOrEqual(4096);
      last = cut.from;
    }
    expect(bytes.length - last).toBeGreaterThanOrEqual(4096);
    expect(chunkStarts(bytes, 16, bytes.length)).toEqual([]);
  });
});

/** A hybrid-36 atom serial (5 columns), as gemmi writes serials past 99,999. */
function hybrid36(serial: number): string {
  if (serial < 100_000) return String(serial).padStart(5);
  return (serial - 100_000 + 10 * 36 ** 4).toString(36).toUpperCase();
}

/** gemmi's short chain names: A-Z, a-z, 0-9, then two characters (written in columns 21-22). */
function chainName(k: number): string {
  const one = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return k < one.length ? one[k] : `${one[(k - one.length) % 26]}${one[Math.floor((k - one.length) / 26) % 26]}`;
}

/**
 * A large assembly made of copies of 4HHB's chains, as gemmi writes the large synthetic PDB: 2-character
 * chain ids, hybrid-36 serials, SEQRES for every chain, TER after each chain, waters and ligands.
 */
async function syntheticAssembly(copies: number): Promise<Buffer> {
  const lines = (await content(path.join(FIXTURES, 'chemfiles_4hhb.pdb.gz'))).toString('latin1').split('\n');
  const atoms = lines.filter((l) => l.startsWith('ATOM  ') || l.startsWith('HETATM'));
  const seqres = lines.filter((l) => l.startsWith('SEQRES'));
  const chains = [...new Set(atoms.map((l) => l[21]))];
  const out: string[] = ['HEADER    OXYGEN TRANSPORT                        07-MAR-84   4HHB'];
  const name = (copy: number, chain: string) => chainName(copy * chains.length + chains.indexOf(chain)).padStart(2);
  for (let copy = 0; copy < copies; copy++) for (const l of seqres) out.push(`${l.slice(0, 10)}${name(copy, l[11])}${l.slice(12)}`);
  let serial = 1;
  for (let copy = 0; copy < copies; copy++) {
    for (const chain of chains) {
      for (const l of atoms.filter((a) => a[21] === chain))
        out.push(`${l.slice(0, 6)}${hybrid36(serial++)}${l.slice(11, 20)}${name(copy, chain)}${l.slice(22)}`);
      out.push(`TER   ${hybrid36(serial++)}`);
    }
  }
  out.push('END', '');
  return Buffer.from(out.join('\n'), 'latin1');
}

describe('the PDB reader with its scan cut into parts on large assemblies', () => {
  it('agrees on a synthetic assembly of 2-character chains and hybrid-36 serials, cut into small parts', async () => {
    const bytes = await syntheticAssembly(40);
    expect(bytes.toString('latin1')).toContain('A0000');
    const scanned = { parts: 0, independent: 0 };
    for (const parts of [2, 16, 300]) await expectSameSplit(bytes, parts, `assembly in ${parts} parts`, scanned);
    expect(scanned.independent).toBe(scanned.parts);
  }, 300_000);

  const large = [path.join('/work/large', '1M4X_capsid8x28.pdb'), path.join(os.tmpdir(), 'molvault-large', '1M4X_capsid8x28.pdb')].find((f) => existsSync(f));
  it.skipIf(!large /* skipped when the large PDB is absent: bench:parse makes it (python3-gemmi) */)(
    'agrees on the large synthetic PDB (2.17 M atoms) cut into 2 and into 64 parts (skipped unless bench:parse made it)',
    async () => {
      const bytes = await fs.readFile(large as string);
      const scanned = { parts: 0, independent: 0 };
      for (const parts of [2, 64]) {
        const whole = readPdbAtoms(bytes);
        const split = await readPdbAtomsSplit(bytes, clonedScanner(bytes, scanned), parts, 1);
        expectSameAtoms(split, whole, `large PDB in ${parts} parts`);
      }
      expect(scanned.independent).toBe(scanned.parts);
      expect(scanned.parts).toBe(64 + 2 - 2);
    },
    600_000,
  );
});

describe('the parse task with the scan split with a helper thread (PDB_SPLIT_MIN_BYTES)', () => {
  it('gives the outcome of the whole scan, the second part scanned in another thread', async () => {
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-pdbsplit-'));
    try {
      splitPdbFrom(1);
      const sources: [string, Buffer][] = [['assembly', await syntheticAssembly(6)]];
      for (const name of (await fs.readdir(FIXTURES)).filter((n) => /\.pdb(\.gz)?$/.test(n))) sources.push([name, await content(path.join(FIXTURES, name))]);
      for (const [name, bytes] of sources) {
        const file = path.join(scratch, 'in.pdb');
        await fs.writeFile(file, bytes);
        expect(comparable(await parse({ path: file, format: 'pdb' })), name).toEqual(comparable(await parseStructureBytes(bytes, 'pdb')));
      }
      expect(partsScannedByHelpers).toBeGreaterThanOrEqual(sources.length - 1);
    } finally {
      splitPdbFrom(0);
      await fs.rm(scratch, { recursive: true, force: true });
    }
  }, 120_000);
});

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the PDB reader with its scan cut into parts on the shared corpus (skipped without ../shared/corpus)',
  () => {
    it('agrees on every corpus PDB file and altered copies, each cut into few and many parts', async () => {
      const names = (await fs.readdir(path.join(CORPUS, 'pdb'))).sort();
      expect(names.length).toBeGreaterThan(50);
      const scanned = { parts: 0, independent: 0 };
      for (const name of names) {
        const bytes = await content(path.join(CORPUS, 'pdb', name));
        const variants: [string, Buffer][] = [['as is', bytes]];
        if (bytes.length < 2_000_000) variants.push(['CRLF', withCrlf(bytes)], ['reversed', atomsReversed(bytes)], ['header last', headerLast(bytes)]);
        for (const [variant, altered] of variants) {
          for (const parts of [2, 9, 64]) await expectSameSplit(altered, parts, `${name} (${variant}) in ${parts} parts`, scanned);
        }
      }
      // Most parts were read on their own (parts of multi-model files are not).
      expect(scanned.independent).toBeGreaterThan(scanned.parts / 2);
    }, 900_000);

    it('agrees on every file of bad/, cut into parts', async () => {
      const names = (await fs.readdir(path.join(CORPUS, 'bad'))).sort();
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        const bytes = await content(path.join(CORPUS, 'bad', name));
        for (const parts of [2, 16]) await expectSameSplit(bytes, parts, `${name} in ${parts} parts`);
      }
    }, 300_000);
  },
);
