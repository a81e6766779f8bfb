/**
 * The byte-level PDB reader (formats/pdbFast.ts) against the reference path (Mol*'s PDB reader and
 * model, formats/parse.ts): the same outcome (summary, refusal, problems and warnings with their
 * line numbers) for every PDB file of the shared corpus (gzipped ones unpacked), for every file of
 * bad/ read as PDB, for altered copies of the corpus files (CRLF line ends, cut mid-line, atom
 * records in reverse order, which makes Mol* sort atoms), for the fixtures, and for PDB files
 * written by gemmi and Open Babel. Any disagreement is a bug in the fast reader.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { align } from 'molstar/lib/mol-model/sequence/alignment/alignment.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffStructures, readAtoms } from '../src/formats/diff.js';
import { parsePdbFast, parseStructure, parseStructureBytes } from '../src/formats/parse.js';
import { alignSequences, lastDecline, readPdbAtoms } from '../src/formats/pdbFast.js';
import { refusedBeforeReading, safeOutcome } from '../src/formats/safeText.js';
import type { ParseOutcome } from '../src/formats/types.js';
import { atomsReversed, CORPUS, hasCorpus, withCrlf } from './helpers/corpus.js';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
const MODEL_REWRITES = new Set(['atoms_outside_model', 'frames_separated_by_end', 'model_without_number']);

/** The outcome without what legitimately differs: time taken and the parser's name. */
function comparable(outcome: ParseOutcome) {
  return { ...outcome, report: { ...outcome.report, parseMs: 0, parser: '' } };
}

async function content(file: string): Promise<Buffer> {
  const bytes = await fs.readFile(file);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

/** Compares both paths on `bytes`; returns whether the fast reader read the file itself (false: it left it to the reference). */
async function expectAgreement(bytes: Buffer, label: string): Promise<boolean> {
  // The reader must never throw: parsePdbFast would hide it by falling back.
  expect(() => readPdbAtoms(bytes), label).not.toThrow();
  const fast = parsePdbFast(bytes);
  const reference = await parseStructure(bytes.toString('latin1'), 'pdb');
  // Both paths pass through the same safety rules (safeText.ts) on their way out.
  if (fast) expect(comparable(refusedBeforeReading(bytes, 'pdb', '') ?? safeOutcome(fast, bytes)), label).toEqual(comparable(reference));
  // What the pool runs (fast reader, or the reference for the files it declines) agrees too.
  expect(comparable(await parseStructureBytes(bytes, 'pdb')), label).toEqual(comparable(reference));
  return fast !== undefined;
}

const cutMidLine = (bytes: Buffer) => bytes.subarray(0, Math.floor(bytes.length * 0.6));

describe('the fast PDB reader agrees with the reference path', () => {
  it('aligns observed residues to SEQRES exactly as Mol* does (random sequences with gaps, mismatches, waters)', () => {
    const alphabet = ['ALA', 'GLY', 'SER', 'HOH', 'A', 'U'];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let t = 0; t < 2000; t++) {
      const letters = Math.floor(random() * (t % 7 === 0 ? 3 : 6)) + 1;
      const seqres = Array.from({ length: Math.floor(random() * 60) }, () => alphabet[Math.floor(random() * letters)]);
      const observed = seqres.filter(() => random() > 0.2).map((x) => (random() < 0.1 ? alphabet[Math.floor(random() * 6)] : x));
      if (random() < 0.3) observed.push(...Array.from({ length: Math.floor(random() * 10) }, () => 'HOH'));
      // Every fifth case: the observed residues are exactly the SEQRES ones.
      if (t % 5 === 0) observed.splice(0, observed.length, ...seqres);
      const expected = align(observed, seqres);
      expect(alignSequences(observed, seqres), JSON.stringify({ observed, seqres })).toEqual({ aliA: expected.aliA, aliB: expected.aliB });
    }
  });

  it('aligns long chains exactly as Mol* does (missing segments and ends, mutations, ligands and waters, repeats)', () => {
    const amino = ['ALA', 'GLY', 'SER', 'LEU', 'VAL', 'ILE', 'LYS', 'GLU', 'ASP', 'THR', 'PRO', 'ASN', 'GLN', 'ARG', 'HIS', 'PHE', 'TYR', 'TRP', 'MET', 'CYS'];
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let t = 0; t < 24; t++) {
      // Low-complexity chains (few letters) make many ties; long ones make wide bands.
      const letters = t % 4 === 3 ? 3 : 20;
      const seqres = Array.from({ length: 150 + Math.floor(random() * 700) }, () => amino[Math.floor(random() * letters)]);
      let observed = [...seqres];
      const cuts = t % 5;
      for (let k = 0; k < cuts; k++) {
        const at = Math.floor(random() * observed.length);
        observed.splice(at, Math.floor(random() * 40) + 1);
      }
      if (t % 3 === 0) observed = observed.slice(Math.floor(random() * 20), observed.length - Math.floor(random() * 20));
      // A long unobserved start or end, as in many deposited chains (the greedy floor of the band meets them early).
      if (t >= 16) observed = t % 2 ? observed.slice(50 + Math.floor(random() * 100)) : observed.slice(0, observed.length - 50 - Math.floor(random() * 100));
      observed = observed.map((x) => (random() < (t % 2 ? 0.05 : 0) ? amino[Math.floor(random() * 20)] : x));
      if (t % 2 === 0) observed.push('HEM', 'SO4', ...Array.from({ length: Math.floor(random() * 300) }, () => 'HOH'));
      if (t === 7) observed.push(...seqres.slice(0, 30)); // a repeat after the chain
      const expected = align(observed, seqres);
      expect(alignSequences(observed, seqres), `case ${t}`).toEqual({ aliA: expected.aliA, aliB: expected.aliB });
    }
  }, 120_000);

  it('on the fixtures, and reads them itself', async () => {
    const names = (await fs.readdir(FIXTURES)).filter((n) => /\.pdb(\.gz)?$/.test(n));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      const read = await expectAgreement(await content(path.join(FIXTURES, name)), name);
      expect(read, `${name}: ${lastDecline}`).toBe(true);
    }
  });

  it('on files without atoms (MODEL records, header records), an empty file and a file that is not PDB: the same refusal', async () => {
    const noAtoms = [
      'MODEL        1\nENDMDL\nMODEL        2\nENDMDL\nEND\n',
      'MODEL \nENDMDL\n',
      'MODEL\nENDMDL\n',
      'MODEL     x\nTER\nEND\nEND\n',
      // SEQRES without atoms: Mol*'s entities fail unless COMPND names the chain.
      'SEQRES   1 A    2  ALA GLY\nHETNAM     HEM HEME\nCOMPND    MOL_ID: 1;\nREMARK 350 BIOMOLECULE: 1\nCONECT    1    2\n',
      'COMPND    MOL_ID: 1;\nCOMPND   2 MOLECULE: X;\nCOMPND   3 CHAIN: A;\nSEQRES   1 A    2  ALA GLY\nSEQRES   1 B    2  ALA GLY\n',
    ];
    for (const text of ['', 'HEADER    TEST\nEND\n', 'just some text\nwith lines\n', 'ATOM      1  N   ALA A   1      11.104   6.134\n', ...noAtoms]) {
      await expectAgreement(Buffer.from(text, 'latin1'), JSON.stringify(text));
    }
  });

  it('on MODEL, ENDMDL and END records the reference rewrites or reads as they are', async () => {
    const text = (await content(path.join(FIXTURES, 'ngl_multi-models-example.pdb'))).toString('latin1');
    const variants: Record<string, string> = {
      'MODEL n without column alignment': text.replace(/^MODEL +(\d+).*$/gm, 'MODEL $1'),
      'MODEL n without ENDMDL': text.replace(/^MODEL +(\d+).*$/gm, 'MODEL $1').replace(/^ENDMDL.*\n/gm, ''),
      'bare MODEL': text.replace(/^MODEL.*$/gm, 'MODEL'),
      'MODEL and spaces': text.replace(/^MODEL.*$/gm, 'MODEL    '),
      'no MODEL, ENDMDL only': text.replace(/^MODEL.*\n/gm, ''),
      'frames separated by END': text.replace(/^MODEL.*\n/gm, '').replace(/^ENDMDL.*$/gm, 'END'),
      'atoms after the last ENDMDL': text.replace(/^END\s*$/m, 'ATOM     99  CA  GLY A  99       1.000   2.000   3.000  1.00  0.00           C\nEND'),
      // The reader splits END frames until it meets a MODEL line, then reads the file again without.
      'frames separated by END, then a MODEL record': `${text.replace(/^MODEL.*\n/gm, '').replace(/^ENDMDL.*$/gm, 'END')}\nMODEL        9\n`,
      'frames separated by END, ENDMDL too': text.replace(/^MODEL.*\n/gm, '').replace(/^ENDMDL.*$/m, 'END'),
    };
    for (const [name, variant] of Object.entries(variants)) {
      expect(variant, name).not.toBe(text);
      await expectAgreement(Buffer.from(variant, 'latin1'), name);
    }
  });

  it('on coordinates the check before reading refuses or lets through, in the first model and in a later one', async () => {
    const text = (await content(path.join(FIXTURES, 'ngl_multi-models-example.pdb'))).toString('latin1');
    const lines = text.split('\n');
    const atomLines = lines.flatMap((l, i) => (l.startsWith('ATOM  ') || l.startsWith('HETATM') ? [i] : []));
    const secondModel = lines.findIndex((l, i) => i > lines.findIndex((m) => m.startsWith('ENDMDL')) && l.startsWith('ATOM  '));
    expect(secondModel).toBeGreaterThan(0);
    // Each field as written in columns 31-38, 39-46 or 47-54 (8 columns).
    const fields = [
      '     NaN',
      '  1.0abc',
      '        ',
      '\t  1.500',
      '  +1.500',
      '   1.5e3',
      '    -.50',
      '  -0.000',
      '      12',
      '  1.5   ',
      '   -    ',
      '1234.567',
      '-123.456',
    ];
    let refused = 0;
    for (const at of [atomLines[3], secondModel]) {
      for (const [column, field] of [30, 38, 46].flatMap((c) => fields.map((f) => [c, f] as const))) {
        const copy = [...lines];
        copy[at] = `${copy[at].slice(0, column)}${field}${copy[at].slice(column + 8)}`;
        for (const variant of [copy.join('\n'), copy.join('\r\n')]) {
          const bytes = Buffer.from(variant, 'latin1');
          await expectAgreement(bytes, `${field} at column ${column + 1}, line ${at + 1}`);
          if (!(await parseStructureBytes(bytes, 'pdb')).ok) refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(0);
  });

  it('on header records: resolution on its line, over two lines, or after a first unreadable one; TITLE and EXPDTA continued; CRLF', async () => {
    const atoms = 'ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N\n';
    const headers = [
      'HEADER    HYDROLASE                               01-JAN-99   1ABC              \nREMARK   2 RESOLUTION.    2.10 ANGSTROMS.\n',
      'REMARK   2 RESOLUTION.\n   2.10 ANGSTROMS.\n',
      'REMARK   2 RESOLUTION.    NOT APPLICABLE.\nREMARK   2 RESOLUTION.    1.50 ANGSTROMS.\n',
      'REMARK   2 RESOLUTION.    3.0\n ANGSTROMS.\nREMARK   2 RESOLUTION.    1.50 ANGSTROMS.\n',
      'TITLE     FIRST PART\nTITLE    2 SECOND  PART\nEXPDTA    X-RAY DIFFRACTION\nEXPDTA   2 ; NEUTRON\n',
      // Whitespace the pattern's \s takes (tab, vertical tab, no-break space), numbers it reads oddly, no number.
      'REMARK   2 RESOLUTION.\t\x0b2.5\xa0ANGSTROMS.\n',
      'REMARK   2 RESOLUTION.  1.5.2  ANGSTROMS.\nREMARK   2 RESOLUTION.    1.50 ANGSTROMS.\n',
      'REMARK   2 RESOLUTION.  .  ANGSTROMS.\n',
      'REMARK   2 RESOLUTION.2.0 ANGSTROMS.\nREMARK   2 RESOLUTION.   2.0ANGSTROMS.\nREMARK   2 RESOLUTION.   2.0   \n\n  ANGSTROM\n',
      'REMARK   2 RESOLUTION.   3.0 angstroms.\nREMARK   2 RESOLUTION.\n',
    ];
    // Header records around the 200,000th byte, where the header fields stop being read: one cut
    // there, one ending just before it, one starting just after it.
    for (const offset of [-20, -6, -4, 0, 3]) {
      const filler = 'REMARK 999 FILLER LINE                                                          \n';
      const pad = 200_000 + offset - 'TITLE     AT THE EDGE\n'.length;
      const remarks = filler.repeat(Math.floor(pad / filler.length));
      const header = `${remarks}${'X'.repeat(pad - remarks.length - 1)}\nTITLE     AT THE EDGE OF THE HEAD\nEXPDTA    X-RAY\n`;
      headers.push(header, header.replace('TITLE     AT THE EDGE OF THE HEAD', 'REMARK   2 RESOLUTION.    2.10 ANGSTROMS.'));
    }
    for (const header of headers) {
      await expectAgreement(Buffer.from(header + atoms, 'latin1'), header.slice(-120));
      await expectAgreement(Buffer.from((header + atoms).replace(/\n/g, '\r\n'), 'latin1'), `${header} (CRLF)`);
    }
  });

  it('on altered fixtures: CRLF line ends, atom records in reverse order, 2-character chain ids', async () => {
    const bytes = await content(path.join(FIXTURES, 'chemfiles_4hhb.pdb.gz'));
    expect(await expectAgreement(withCrlf(bytes), 'crlf')).toBe(true);
    expect(await expectAgreement(atomsReversed(bytes), 'reversed')).toBe(true);
    // Chain ids widened to 2 characters (column 21), as gemmi writes large assemblies.
    const wide = Buffer.from(
      bytes
        .toString('latin1')
        .split('\n')
        .map((l) => (l.startsWith('ATOM  ') || l.startsWith('HETATM') ? `${l.slice(0, 20)}X${l.slice(21)}` : l))
        .join('\n'),
      'latin1',
    );
    expect(await expectAgreement(wide, 'wide chains')).toBe(true);
    const outcome = parsePdbFast(wide);
    expect(outcome?.report.warnings.map((w) => w.code)).toContain('wide_chain_ids');
  });

  it('on copies of a chain under 2-character ids that read as one chain (as large assemblies are written): residues of many atoms, sorted across copies', async () => {
    const lines = (await content(path.join(FIXTURES, 'chemfiles_4hhb.pdb.gz'))).toString('latin1').split('\n');
    const header = lines.filter((l) => !/^(ATOM {2}|HETATM|TER {3}|END|MASTER|CONECT)/.test(l));
    const chainA = lines.filter((l) => l.startsWith('ATOM  ') && l[21] === 'A');
    // Residue numbers of copy c shifted by `shift(c)`: the same numbers in every copy (a range the
    // sort counts through), or numbers going down from copy to copy over a wide range.
    const copies = (count: number, shift: (c: number) => number) =>
      Array.from({ length: count }, (_, c) =>
        chainA.map((l) => `${l.slice(0, 20)}${String.fromCharCode(65 + c)}A${String(Number(l.slice(22, 26)) + shift(c)).padStart(4)}${l.slice(26)}`),
      ).flat();
    for (const [label, atoms] of [
      ['same numbers', copies(6, () => 0)],
      ['numbers going down', copies(5, (c) => (4 - c) * 2000)],
    ] as const) {
      const bytes = Buffer.from([...header, ...atoms, 'END', ''].join('\n'), 'latin1');
      expect(await expectAgreement(bytes, label)).toBe(true);
      const outcome = parsePdbFast(bytes);
      expect(outcome?.report.warnings.map((w) => w.code)).toContain('wide_chain_ids');
      if (label === 'same numbers') expect(outcome?.report.warnings.map((w) => w.code)).toContain('duplicate_atoms');
    }
  });
});

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the fast PDB reader on the shared corpus (skipped without ../shared/corpus)',
  () => {
    let pdbFiles: string[] = [];
    let scratch: string;
    beforeAll(async () => {
      pdbFiles = (await fs.readdir(path.join(CORPUS, 'pdb'))).sort().map((n) => path.join(CORPUS, 'pdb', n));
      scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-pdbfast-'));
    });
    afterAll(async () => {
      if (scratch) await fs.rm(scratch, { recursive: true, force: true });
    });

    it('agrees on every PDB file of the corpus, and reads most of them itself', async () => {
      expect(pdbFiles.length).toBeGreaterThan(50);
      const declined: string[] = [];
      for (const file of pdbFiles) {
        if (!(await expectAgreement(await content(file), path.basename(file)))) declined.push(`${path.basename(file)}: ${lastDecline}`);
      }
      // The files it leaves are ones the reference rewrites first (MODEL records without a number,
      // frames separated by END) or that hold no atoms; they are few.
      expect(declined.length, declined.join('\n')).toBeLessThanOrEqual(pdbFiles.length / 8);
    }, 300_000);

    it('agrees on every file of bad/ read as PDB', async () => {
      const names = (await fs.readdir(path.join(CORPUS, 'bad'))).sort();
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) await expectAgreement(await content(path.join(CORPUS, 'bad', name)), name);
    }, 120_000);

    it('agrees on altered copies of the corpus files: CRLF, cut mid-line, atom records reversed', async () => {
      let compared = 0;
      for (const file of pdbFiles) {
        const bytes = await content(file);
        if (bytes.length > 2_000_000) continue; // the large ones add time, not cases
        const name = path.basename(file);
        await expectAgreement(withCrlf(bytes), `${name} (CRLF)`);
        await expectAgreement(cutMidLine(bytes), `${name} (cut)`);
        await expectAgreement(atomsReversed(bytes), `${name} (reversed)`);
        compared++;
      }
      expect(compared).toBeGreaterThan(50);
    }, 600_000);

    const gemmi = spawnSync('gemmi', ['--version']).status === 0;
    const obabel = spawnSync('obabel', ['-V']).status === 0;

    it.skipIf(!gemmi /* skipped when the gemmi CLI is not installed */)(
      'agrees on PDB files gemmi writes, and they read back with the same counts (skipped without the gemmi CLI)',
      async () => {
        let compared = 0;
        for (const file of pdbFiles) {
          const name = path.basename(file).replace(/\.gz$/, '');
          const source = path.join(scratch, `src_${name}`);
          await fs.writeFile(source, await content(file));
          const out = path.join(scratch, `gemmi_${name}.pdb`);
          if (spawnSync('gemmi', ['convert', '--from=pdb', '--to=pdb', source, out], { stdio: 'ignore' }).status !== 0) continue;
          const written = await fs.readFile(out);
          await expectAgreement(written, `gemmi ${name}`);
          const original = await parseStructureBytes(await content(file), 'pdb');
          const roundTrip = await parseStructureBytes(written, 'pdb');
          if (original.ok && roundTrip.ok) {
            expect(roundTrip.summary.atoms, `gemmi ${name}`).toBe(original.summary.atoms);
            // Where molvault made models of records outside MODEL/ENDMDL, gemmi reads them otherwise.
            const reinterpreted = original.report.warnings.some((w) => MODEL_REWRITES.has(w.code));
            if (!reinterpreted) expect(roundTrip.summary.models, `gemmi ${name}`).toBe(original.summary.models);
            compared++;
          }
        }
        // mmCIF written out as PDB by gemmi: the corpus's large ribosome among them.
        for (const name of ['pymmcif_1ffk.cif', 'chemfiles_4hhb.cif', 'biopython_2XHE.cif']) {
          const cif = path.join(CORPUS, 'cif', name);
          const out = path.join(scratch, `gemmi_${name}.pdb`);
          if (spawnSync('gemmi', ['convert', '--to=pdb', cif, out], { stdio: 'ignore' }).status !== 0) continue;
          expect(await expectAgreement(await fs.readFile(out), `gemmi ${name}`)).toBe(true);
          compared++;
        }
        expect(compared).toBeGreaterThan(40);
      },
      600_000,
    );

    it.skipIf(!obabel /* skipped when the Open Babel CLI is not installed */)(
      'agrees on PDB files Open Babel writes, and they read back with the same atom counts (skipped without the obabel CLI)',
      async () => {
        let compared = 0;
        for (const file of pdbFiles.filter((f) => !f.endsWith('.gz')).slice(0, 40)) {
          const name = path.basename(file);
          const out = path.join(scratch, `obabel_${name}.pdb`);
          try {
            execFileSync('obabel', ['-ipdb', file, '-opdb', '-O', out], { stdio: 'ignore', timeout: 60_000 });
          } catch {
            continue;
          }
          const written = await fs.readFile(out).catch(() => undefined);
          if (!written || written.length === 0) continue;
          await expectAgreement(written, `obabel ${name}`);
          const original = await parseStructureBytes(await content(file), 'pdb');
          const roundTrip = await parseStructureBytes(written, 'pdb');
          // Open Babel writes the first model only, and keeps every atom of it.
          if (original.ok && roundTrip.ok && original.summary.models === 1) {
            expect(roundTrip.summary.atoms, `obabel ${name}`).toBe(original.summary.atoms);
            compared++;
          }
        }
        expect(compared).toBeGreaterThan(20);
      },
      600_000,
    );

    it('gives the structure diff the same atom table as the reference for every corpus PDB file', async () => {
      let compared = 0;
      for (const file of pdbFiles) {
        const bytes = await content(file);
        const reference = await readAtoms({ bytes, format: 'pdb' }, { reference: true }).catch((error: Error) => error.message);
        const fast = await readAtoms({ bytes, format: 'pdb' }).catch((error: Error) => error.message);
        expect(fast, path.basename(file)).toEqual(reference);
        compared++;
      }
      expect(compared).toBe(pdbFiles.length);
    }, 300_000);

    it('gives the structure diff the same atoms as the reference (gemmi-written 1FFK, moved)', async () => {
      const out = path.join(scratch, '1ffk.pdb');
      if (spawnSync('gemmi', ['convert', '--to=pdb', path.join(CORPUS, 'cif/pymmcif_1ffk.cif'), out], { stdio: 'ignore' }).status !== 0) return;
      const text = await fs.readFile(out, 'latin1');
      const moved = text
        .split('\n')
        .map((l) =>
          l.startsWith('ATOM  ') || l.startsWith('HETATM') ? `${l.slice(0, 30)}${(Number(l.slice(30, 38)) + 1).toFixed(3).padStart(8)}${l.slice(38)}` : l,
        )
        .join('\n');
      const fast = await diffStructures({ text, format: 'pdb' }, { text: moved, format: 'pdb' });
      const reference = await diffStructures({ text, format: 'pdb' }, { text: moved, format: 'pdb' }, undefined, { reference: true });
      expect(fast).toEqual(reference);
      expect(fast.atoms.moved.count).toBeGreaterThan(0);
    }, 120_000);
  },
);
