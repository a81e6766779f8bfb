/**
 * The byte-level mmCIF reader (cifFast.ts, through parseStructureBytes) against the reference
 * path (parseStructure on the text: Mol*'s tokenizer, then the token summary or Mol*'s model):
 * the same outcome, field by field and refusal by refusal, on every corpus mmCIF (and the .gz
 * ones), with CRLF line ends, on mmCIF written by gemmi and Open Babel, on seeded mutants of the
 * corpus files, and on hand-made files that exercise the tokenizer's corners. Only the time taken
 * and the parser's name may differ.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { lastCifDecline, readMmcifFast } from '../src/formats/cifFast.js';
import { FAST_CIF_PARSER, parseStructure, parseStructureBytes } from '../src/formats/parse.js';
import type { ParseOutcome } from '../src/formats/types.js';
import { CORPUS, corpusPdbAsGemmiMmcif, corpusPdbAsObabelMmcif, hasCorpus } from './helpers/corpus.js';
import { loadSeeds, MUTATIONS, random } from './helpers/mutants.js';

const comparable = (o: ParseOutcome) => ({ ...o, report: { ...o.report, parseMs: 0, parser: '' } });

/** Compares both paths on one file; returns whether the byte-level reader read it. */
async function agree(bytes: Buffer, label: string): Promise<boolean> {
  const fast = await parseStructureBytes(bytes, 'cif');
  const reference = await parseStructure(bytes.toString('latin1'), 'cif');
  expect(comparable(fast), `${label} (${lastCifDecline || 'read by the byte-level reader'})`).toEqual(comparable(reference));
  return fast.report.parser === FAST_CIF_PARSER;
}

const SMALL = `data_TEST
#
_entry.id 1ABC
_struct.title
;A title on
two lines
;
_exptl.method 'X-RAY DIFFRACTION'
_refine.ls_d_res_high 1.80
loop_
_entity.id
_entity.type
1 polymer
2 non-polymer
3 water
loop_
_chem_comp.id
_chem_comp.name
ALA ALANINE
HEM 'PROTOPORPHYRIN IX CONTAINING FE'
HOH WATER
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_entity_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.auth_seq_id
_atom_site.auth_asym_id
_atom_site.pdbx_PDB_model_num
ATOM 1 N N . ALA A 1 1 ? 1.000 2.000 3.000 1 A 1
ATOM 2 C CA . ALA A 1 1 ? 2.000 2.000 3.000 1 A 1
ATOM 3 C C A ALA A 1 2 ? 3.000 2.000 3.000 2 A 1
ATOM 4 C C B ALA A 1 2 ? 3.100 2.000 3.000 2 A 1
HETATM 5 FE FE . HEM B 2 . ? 0.000 -1.5e1 3.000 10 B 1
HETATM 6 O O . HOH C 3 . ? 7.000 2.000 3.000 11 C 1
ATOM 7 N N . ALA A 1 1 ? 1.000 2.000 3.000 1 A 2
`;

/** Hand-made variants of SMALL, each touching one corner of the tokenizer or the summary. */
const VARIANTS: Record<string, (text: string) => string> = {
  asIs: (t) => t,
  crlf: (t) => t.replace(/\n/g, '\r\n'),
  tabs: (t) => t.replace(/ /g, '\t'),
  quotedValues: (t) => t.replace('ALA A 1 1 ? 1.000', "'ALA' \"A\" 1 1 ? '1.000'"),
  quoteInsideValue: (t) => t.replace('HOH WATER', "HOH 'WAT'ER'"),
  textFieldInAtoms: (t) => t.replace('ATOM 2 C CA . ALA', 'ATOM 2 C\n;CA\n;\n. ALA'),
  semicolonMidLine: (t) => t.replace('ATOM 2 C CA .', 'ATOM 2 C ;CA .'),
  commentInAtoms: (t) => t.replace('ATOM 3 C', '# a comment\nATOM 3 C'),
  commentAfterValue: (t) => t.replace('1 A 1\nATOM 2', '1 A 1 # trailing\nATOM 2'),
  keywordLikeValue: (t) => t.replace('ALA A 1 1 ? 1.000', 'ALAxx_ A 1 1 ? 1.000'),
  loopKeywordInAtoms: (t) => t.replace('ATOM 6 O', 'loop_ ATOM 6 O'),
  dataBlockAfter: (t) => `${t}data_SECOND\n_entry.id 2XYZ\n`,
  dataBlockBefore: (t) => `data_EMPTY\n${t}`,
  secondBlockFirst: (t) => `data_FIRST\n_entry.id 2XYZ\n${t}`,
  saveFrame: (t) => `${t}save_frame\n_x.y 1\nsave_\n`,
  unfinishedRow: (t) => t.replace('3.000 1 A 2\n', '3.000 1 A\n'),
  missingCoordinate: (t) => t.replace('7.000 2.000', '? 2.000'),
  notANumber: (t) => t.replace('7.000 2.000', 'abc 2.000'),
  nanCoordinate: (t) => t.replace('7.000 2.000', 'nan 2.000'),
  zeroWritten: (t) => t.replace('7.000 2.000', '0 2.000'),
  hugeCoordinate: (t) => t.replace('7.000 2.000', '7e7 2.000'),
  infiniteCoordinate: (t) => t.replace('7.000 2.000', '1e400 2.000'),
  entityUndescribed: (t) => t.replace('HOH C 3', 'HOH C 4'),
  entityMissing: (t) => t.replace('HOH C 3', 'HOH C .'),
  noEntityCategory: (t) => t.replace(/loop_\n_entity\.id\n_entity\.type\n1 polymer\n2 non-polymer\n3 water\n/, ''),
  entityAfterAtoms: (t) => {
    const entity = '_entity.id\n_entity.type\n1 polymer\n2 non-polymer\n3 water\n';
    return `${t.replace(`loop_\n${entity}`, '')}loop_\n${entity}`;
  },
  entityTwice: (t) => `${t}loop_\n_entity.id\n_entity.type\n9 polymer\n`,
  fieldInOtherCase: (t) => t.replace('_atom_site.Cartn_x', '_atom_site.cartn_x'),
  fieldTwice: (t) => t.replace('_atom_site.Cartn_z\n', '_atom_site.Cartn_z\n_atom_site.Cartn_z\n').replace(/ (\d+) ([A-C]) ([12])\n/g, ' $1 $2 $3 0\n'),
  chainSplit: (t) => t.replace('ATOM 7 N N . ALA A 1 1 ? 1.000 2.000 3.000 1 A 2', 'ATOM 7 N N . ALA A 1 3 ? 1.000 2.000 3.000 3 A 1'),
  seqGoingDown: (t) => t.replace('ALA A 1 2 ? 3.100', 'ALA A 1 0 ? 3.100'),
  duplicateAtom: (t) => t.replace('C C B ALA', 'C C A ALA'),
  insertionCode: (t) => t.replace('ALA A 1 2 ? 3.100 2.000 3.000 2', 'ALA A 1 2 X 3.100 2.000 3.000 2'),
  noModelNumbers: (t) => t.replace('_atom_site.pdbx_PDB_model_num\n', '').replace(/ (\d+) ([A-C]) [12]\n/g, ' $1 $2\n'),
  integrative: (t) => `${t}loop_\n_ihm_model_list.model_id\n1\n`,
  unknownResidue: (t) => t.replace('HEM B 2', 'XYZ B 2'),
  noChemComp: (t) => t.replace(/loop_\n_chem_comp\.id[\s\S]*?HOH WATER\n/, ''),
  emptyTitle: (t) => t.replace(/_struct\.title\n;A title on\ntwo lines\n;/, "_struct.title ''"),
  tripleQuotes: (t) => t.replace("'X-RAY DIFFRACTION'", "'''X-RAY ''DIFFRACTION'''"),
  unterminatedQuote: (t) => t.replace("'X-RAY DIFFRACTION'", "'X-RAY DIFFRACTION"),
  unterminatedTextField: (t) => `${t}_struct_keywords.text\n;never closed\n`,
  nameWithoutValue: (t) => `${t}_struct_keywords.text\n`,
  strayValue: (t) => t.replace('_entry.id 1ABC', '_entry.id 1ABC stray'),
  loopWithoutNames: (t) => `${t}loop_\n1 2 3\n`,
  undottedLoop: (t) => `${t}loop_\n_cell_length_a\n_cell_length_b\n1 2\n`,
  undottedSingle: (t) => `${t}_ihm_model_list 1\n`,
  atomSiteSingle: (t) => t.replace(/loop_\n_atom_site[\s\S]*$/, '_atom_site.id 1\n_atom_site.Cartn_x 1.0\n'),
  controlCharacterInTitle: (t) => t.replace('A title on', 'A ti\u0001tle on'),
  controlCharacterInLigand: (t) => t.replace(/HEM/g, 'H\u0002M'),
  nulByte: (t) => t.replace('A title on', 'A title\u0000 on'),
  noAtoms: (t) => t.replace(/ATOM [\s\S]*$/, ''),
  resolutionFromReflns: (t) => t.replace('_refine.ls_d_res_high 1.80', '_reflns.d_resolution_high 2.5'),
  resolutionUnknown: (t) => t.replace('_refine.ls_d_res_high 1.80', '_refine.ls_d_res_high ?'),
  idNotPdb: (t) => t.replace('_entry.id 1ABC', '_entry.id my_model'),
  altLocQuestionMark: (t) => t.replace('C C A ALA', 'C C ? ALA'),
};

describe('the byte-level mmCIF reader agrees with the reference path', () => {
  it('on hand-made files for each corner of the tokenizer and the summary', async () => {
    const read: string[] = [];
    for (const [name, variant] of Object.entries(VARIANTS)) {
      if (await agree(Buffer.from(variant(SMALL), 'latin1'), name)) read.push(name);
    }
    // The reader must have taken the common shapes itself, not left them all to the reference.
    for (const name of [
      'asIs',
      'crlf',
      'tabs',
      'quotedValues',
      'textFieldInAtoms',
      'commentInAtoms',
      'entityAfterAtoms',
      'dataBlockAfter',
      'infiniteCoordinate',
    ])
      expect(read, name).toContain(name);
  });

  it('declines what it does not reproduce, saying why', () => {
    expect(readMmcifFast(Buffer.from(VARIANTS.saveFrame(SMALL), 'latin1'))).toBeUndefined();
    expect(lastCifDecline).toBe('save frames');
    expect(readMmcifFast(Buffer.from(VARIANTS.entityUndescribed(SMALL), 'latin1'))).toBeUndefined();
    expect(lastCifDecline).toBe('an atom of an undescribed entity');
    expect(readMmcifFast(Buffer.from(SMALL, 'latin1'))?.models).toBe(2);
  });
});

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the byte-level mmCIF reader on the corpus (skipped without ../shared/corpus)',
  () => {
    const corpusFiles = async () => {
      const files: { name: string; bytes: Buffer }[] = [];
      for (const name of (await fs.readdir(path.join(CORPUS, 'cif'))).sort()) {
        let bytes = await fs.readFile(path.join(CORPUS, 'cif', name));
        if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
        files.push({ name, bytes });
      }
      return files;
    };

    it('on every corpus mmCIF file, as it is and with CRLF line ends', async () => {
      let read = 0;
      for (const { name, bytes } of await corpusFiles()) {
        if (await agree(bytes, name)) read++;
        await agree(Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1'), `${name} (CRLF)`);
      }
      expect(read).toBeGreaterThan(35);
    }, 300_000);

    it('on seeded mutants of the corpus mmCIF files', async () => {
      const seeds = (await loadSeeds([path.join(CORPUS, 'cif')], 600_000)).filter((s) => s.format === 'cif');
      // Mol*'s CIF reader prints the token it stumbles on, megabytes of it for some mutants.
      const quiet = vi.spyOn(console, 'log').mockImplementation(() => {});
      let read = 0;
      let compared = 0;
      try {
        for (const [name, mutate] of Object.entries(MUTATIONS)) {
          if (name === 'corruptGzip' || name === 'corruptBzip2') continue;
          for (const seed of seeds) {
            const { content } = mutate(random(compared * 7919 + 17), seed);
            if (await agree(content, `${name} of ${seed.name}`)) read++;
            compared++;
          }
        }
      } finally {
        quiet.mockRestore();
      }
      expect(compared).toBeGreaterThan(400);
      expect(read).toBeGreaterThan(50);
    }, 300_000);

    it.skipIf(spawnSync('gemmi', ['--version']).status !== 0 /* skipped when the gemmi CLI is not installed */)(
      'on mmCIF written by gemmi from every corpus PDB file (skipped without the gemmi CLI)',
      async () => {
        let compared = 0;
        for await (const { name, written } of corpusPdbAsGemmiMmcif()) {
          await agree(written, `gemmi's mmCIF of ${name}`);
          compared++;
        }
        expect(compared).toBeGreaterThan(50);
      },
      300_000,
    );

    it.skipIf(spawnSync('obabel', ['-V']).status !== 0 /* skipped when the Open Babel CLI is not installed */)(
      'on mmCIF written by Open Babel (skipped without the obabel CLI)',
      async () => {
        let compared = 0;
        for await (const { name, written } of corpusPdbAsObabelMmcif(30)) {
          await agree(written, `Open Babel's mmCIF of ${name}`);
          compared++;
        }
        expect(compared).toBeGreaterThan(20);
      },
      300_000,
    );
  },
);
