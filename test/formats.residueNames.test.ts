/**
 * molvault's ports of Mol*'s model/types.js pieces (formats/residueNames.ts) and of its component
 * and entity builders and PDB record parsers (formats/pdbEntities.ts) against Mol*'s originals:
 * every name set element for element, the functions on every name Mol* knows and every residue
 * name of the corpus (in their own, lower and mixed case), the builders driven through the same
 * calls on every PDB file of the corpus. The byte-level PDB reader's agreement with the reference
 * path (formats.pdbFast.test.ts) rests on these.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { CIF } from 'molstar/lib/mol-io/reader/cif.js';
import { IonNames } from 'molstar/lib/mol-model/structure/model/types/ions.js';
import { LipidNames } from 'molstar/lib/mol-model/structure/model/types/lipids.js';
import * as Types from 'molstar/lib/mol-model/structure/model/types.js';
import { SaccharideCompIdMap } from 'molstar/lib/mol-model/structure/structure/carbohydrates/constants.js';
import { ComponentBuilder as MolComponentBuilder } from 'molstar/lib/mol-model-formats/structure/common/component.js';
import { EntityBuilder as MolEntityBuilder } from 'molstar/lib/mol-model-formats/structure/common/entity.js';
import * as MolPdbEntity from 'molstar/lib/mol-model-formats/structure/pdb/entity.js';
import { describe, expect, it } from 'vitest';
import { ComponentBuilder, checkEntityPolySeq, EntityBuilder, parseCmpnd, parseHetnam, parseSeqres } from '../src/formats/pdbEntities.js';
import * as Ours from '../src/formats/residueNames.js';
import { CORPUS, corpusContent, hasCorpus } from './helpers/corpus.js';

const sorted = (set: Iterable<string>) => [...set].sort();

/** Mol*'s line-list input to its PDB record parsers. */
function lineList(lines: string[]) {
  const indices: number[] = [];
  let at = 0;
  for (const l of lines) {
    indices.push(at, at + l.length);
    at += l.length + 1;
  }
  return { data: lines.join('\n'), indices, count: lines.length } as never;
}

/** Each set of residueNames.ts with Mol*'s of the same name. */
const NAME_SETS: [string, ReadonlySet<string>, ReadonlySet<string>][] = [
  ['DProteinComponentTypeNames', Ours.DProteinComponentTypeNames, Types.DProteinComponentTypeNames],
  ['LProteinComponentTypeNames', Ours.LProteinComponentTypeNames, Types.LProteinComponentTypeNames],
  ['OtherProteinComponentTypeNames', Ours.OtherProteinComponentTypeNames, Types.OtherProteinComponentTypeNames],
  ['ProteinComponentTypeNames', Ours.ProteinComponentTypeNames, Types.ProteinComponentTypeNames],
  ['DNAComponentTypeNames', Ours.DNAComponentTypeNames, Types.DNAComponentTypeNames],
  ['RNAComponentTypeNames', Ours.RNAComponentTypeNames, Types.RNAComponentTypeNames],
  ['SaccharideComponentTypeNames', Ours.SaccharideComponentTypeNames, Types.SaccharideComponentTypeNames],
  ['OtherComponentTypeNames', Ours.OtherComponentTypeNames, Types.OtherComponentTypeNames],
  ['WaterNames', Ours.WaterNames, Types.WaterNames],
  ['AminoAcidNamesL', Ours.AminoAcidNamesL, Types.AminoAcidNamesL],
  ['AminoAcidNamesD', Ours.AminoAcidNamesD, Types.AminoAcidNamesD],
  ['AminoAcidNames', Ours.AminoAcidNames, Types.AminoAcidNames],
  ['RnaBaseNames', Ours.RnaBaseNames, Types.RnaBaseNames],
  ['DnaBaseNames', Ours.DnaBaseNames, Types.DnaBaseNames],
  ['PeptideBaseNames', Ours.PeptideBaseNames, Types.PeptideBaseNames],
  ['BaseNames', Ours.BaseNames, Types.BaseNames],
  ['PolymerNames', Ours.PolymerNames, Types.PolymerNames],
];

// Mol*'s declarations make these a const enum and narrow the function's type argument; at run time they are an object and a function of strings.
const MolMoleculeType = (Types as unknown as { MoleculeType: Record<string, number> }).MoleculeType;
const molGetMoleculeType = Types.getMoleculeType as (compType: string, compId: string) => number;

/** Every name of every set Mol* types residues by. */
function molstarNames(): Set<string> {
  const names = new Set<string>([...IonNames, ...LipidNames, ...SaccharideCompIdMap.keys()]);
  for (const [, , theirs] of NAME_SETS) for (const name of theirs) names.add(name);
  for (const name of Types.CommonProteinCaps) names.add(name);
  return names;
}

/** Every component type the builders and the sets know, and some they do not. */
function componentTypes(): string[] {
  const types = new Set<string>(['', 'unknown', 'ion', 'lipid', 'saccharide', 'NON-POLYMER', 'Peptide Linking', 'L-PEPTIDE LINKING']);
  for (const [set, , theirs] of NAME_SETS) if (set.endsWith('ComponentTypeNames')) for (const t of theirs) types.add(t);
  for (const t of [...Types.IonComponentTypeNames, ...Types.LipidComponentTypeNames]) types.add(t);
  for (const t of ['peptide linking', 'rna linking', 'dna linking', 'other', 'non-polymer']) types.add(t);
  return [...types];
}

/** The gunzipped PDB files of the corpus: pdb/ and the PDB files of bad/. */
async function corpusPdbFiles(): Promise<{ name: string; lines: string[] }[]> {
  const files: { name: string; lines: string[] }[] = [];
  for (const folder of ['pdb', 'bad']) {
    for (const name of (await fs.readdir(path.join(CORPUS, folder))).sort()) {
      if (folder === 'bad' && !/\.(pdb|ent)(\.gz)?$/.test(name)) continue;
      const text = (await corpusContent(path.join(folder, name))).toString('latin1');
      files.push({ name: `${folder}/${name}`, lines: text.split(/\r?\n|\r/) });
    }
  }
  return files;
}

/** Residue names of the corpus: PDB atom records, SEQRES and HETNAM; mmCIF atom_site and chem_comp. */
async function corpusResidueNames(pdbFiles: { lines: string[] }[]): Promise<Set<string>> {
  const names = new Set<string>();
  for (const { lines } of pdbFiles) {
    for (const line of lines) {
      if (line.startsWith('ATOM  ') || line.startsWith('HETATM')) {
        names.add(line.substring(17, 20).trim());
        names.add(line.substring(17, 21).trim());
      } else if (line.startsWith('SEQRES')) for (const n of line.substring(19).trim().split(/\s+/)) names.add(n);
      else if (line.startsWith('HETNAM')) names.add(line.substring(11, 14).trim());
    }
  }
  for (const name of await fs.readdir(path.join(CORPUS, 'cif'))) {
    const text = (await corpusContent(path.join('cif', name))).toString('latin1');
    const parsed = await CIF.parse(text).run();
    if (parsed.isError) continue;
    for (const block of parsed.result.blocks) {
      for (const [category, field] of [
        ['atom_site', 'label_comp_id'],
        ['atom_site', 'auth_comp_id'],
        ['chem_comp', 'id'],
      ]) {
        const column = block.categories[category]?.getField(field);
        for (let row = 0; row < (column?.rowCount ?? 0); row++) names.add(column?.str(row) ?? '');
      }
    }
  }
  return names;
}

describe('residue names and molecule types as Mol* has them', () => {
  it('holds every name set element for element, and the saccharide names of the default map', () => {
    for (const [set, ours, theirs] of NAME_SETS) expect(sorted(ours), set).toEqual(sorted(theirs));
    expect(sorted(Ours.SaccharideCompIds)).toEqual(sorted(SaccharideCompIdMap.keys()));
  });

  it('numbers molecule types as Mol* does, and calls the same ones polymers', () => {
    for (const [name, value] of Object.entries(Ours.MoleculeType)) {
      expect(MolMoleculeType[name], name).toBe(value);
      expect(Ours.isPolymer(value), name).toBe(Types.isPolymer(value as never));
    }
    expect(Object.keys(Ours.MoleculeType).length).toBe(Object.keys(MolMoleculeType).length / 2);
  });

  it('spells every 1–3 character element symbol of Mol*’s table, and other strings, as ElementSymbol does', () => {
    const chars = [
      ...Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i)),
      ...Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i)),
      ...Array.from({ length: 10 }, (_, i) => String.fromCharCode(48 + i)),
    ];
    let checked = 0;
    for (const a of chars) {
      for (const b of ['', ...chars]) {
        for (const c of b ? ['', ...chars] : ['']) {
          const s = a + b + c;
          if (Ours.elementSymbol(s) !== Types.ElementSymbol(s)) expect(Ours.elementSymbol(s), s).toBe(Types.ElementSymbol(s));
          checked++;
        }
      }
    }
    expect(checked).toBe(62 + 62 ** 2 + 62 ** 3);
    const odd = ['', ' ', ' C', 'Fe ', 'ABCD', 'fe2+', '__proto__', 'constructor', 'toString', 'ß', 'ÿ', 'µ', 'é', 'Ç', '\u0131', 'ﬀ', '*', '?', '.'];
    for (let code = 0; code < 256; code++) odd.push(String.fromCharCode(code), `${String.fromCharCode(code)}a`);
    for (const s of odd) expect(Ours.elementSymbol(s), JSON.stringify(s)).toBe(Types.ElementSymbol(s));
  });

  it.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent */)(
    'types every residue name Mol* knows and every one of the corpus, in any case, with every component type, as getMoleculeType does (skipped without ../shared/corpus)',
    async () => {
      const names = new Set([...molstarNames(), ...(await corpusResidueNames(await corpusPdbFiles()))]);
      expect(names.size).toBeGreaterThan(1500);
      const variants = new Set<string>();
      for (const n of names) {
        variants.add(n);
        variants.add(n.toLowerCase());
        variants.add(n.charAt(0) + n.slice(1).toLowerCase());
      }
      const types = componentTypes();
      let calls = 0;
      for (const name of variants) {
        for (const type of types) {
          const ours = Ours.getMoleculeType(type, name);
          if (ours !== molGetMoleculeType(type, name)) expect(ours, `${type} ${name}`).toBe(molGetMoleculeType(type, name));
          calls++;
        }
      }
      expect(calls).toBeGreaterThan(50_000);
    },
  );
});

describe('the PDB component and entity builders and record parsers as Mol* has them', () => {
  it('parses COMPND, HETNAM and SEQRES blocks as Mol* does, odd specifications included', () => {
    const compnd = [
      'COMPND    MOL_ID: 1;',
      'COMPND   2 MOLECULE: HEMOGLOBIN ALPHA;',
      'COMPND   3 CHAIN: A, C;',
      'COMPND   4 toString: X;',
      'COMPND   5 MORE OF IT;',
      'COMPND   6 MOL_ID: 2;',
      'COMPND   7 MOLECULE: HEMOGLOBIN',
      'COMPND   8  BETA;',
      'COMPND   9 CHAIN: B ,D',
      'COMPND  10 __proto__: Y',
      'COMPND  11 ENGINEERED: YES',
    ];
    expect(parseCmpnd(compnd)).toEqual(MolPdbEntity.parseCmpnd(lineList(compnd), 0, compnd.length));
    const hetnam = ['HETNAM     HEM PROTOPORPHYRIN IX CONTAINING FE', 'HETNAM   2 HEM  MORE', 'HETNAM     SO4 SULFATE ION', 'HETNAM'];
    expect([...parseHetnam(hetnam)]).toEqual([...MolPdbEntity.parseHetnam(lineList(hetnam), 0, hetnam.length)]);
    const seqres = ['SEQRES   1 A    3  ALA GLY SER', 'SEQRES   2 A    3  LYS', 'SEQRES   1      2  DA DC', 'SEQRES'];
    expect([...parseSeqres(seqres)]).toEqual([...MolPdbEntity.parseSeqres(lineList(seqres), 0, seqres.length)]);
  });

  it.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent */)(
    'give every corpus PDB file the same components, entities and record blocks as Mol*’s (skipped without ../shared/corpus)',
    async () => {
      const files = await corpusPdbFiles();
      expect(files.length).toBeGreaterThan(75);
      let entitiesSeen = 0;
      for (const { name, lines } of files) {
        const block = (record: string) => lines.filter((l) => l.startsWith(record));
        const hetnam = block('HETNAM');
        const seqres = block('SEQRES');
        const compnd = block('COMPND');
        const heteroNames = [...parseHetnam(hetnam)];
        expect(heteroNames, name).toEqual([...MolPdbEntity.parseHetnam(lineList(hetnam), 0, hetnam.length)]);
        const seqresMap = parseSeqres(seqres);
        expect([...seqresMap], name).toEqual([...MolPdbEntity.parseSeqres(lineList(seqres), 0, seqres.length)]);
        const compounds = parseCmpnd(compnd);
        expect(compounds, name).toEqual(MolPdbEntity.parseCmpnd(lineList(compnd), 0, compnd.length));

        const atoms = lines.filter((l) => l.startsWith('ATOM  ') || l.startsWith('HETATM'));
        const seqId = (i: number) => Number.parseInt(atoms[i].substring(22, 26), 10);
        const atomId = (i: number) => atoms[i].substring(12, 16).trim();
        const ours = new ComponentBuilder(atoms.length, seqId, atomId);
        const theirs = new MolComponentBuilder({ rowCount: atoms.length, value: seqId } as never, { rowCount: atoms.length, value: atomId } as never);
        ours.setNames(heteroNames);
        theirs.setNames(heteroNames);
        const ourEntities = new EntityBuilder();
        const theirEntities = new MolEntityBuilder();
        for (const c of [ourEntities, theirEntities]) {
          c.setCompounds(compounds.map((x) => ({ ...x, chains: [...x.chains] })));
          if (seqres.length) c.setSeqres(seqresMap);
          c.setNames(heteroNames);
        }
        for (let i = 0; i < atoms.length; i++) {
          const comp = atoms[i].substring(17, 20).trim();
          const component = ours.add(comp, i);
          expect(component, `${name} atom ${i}`).toEqual(theirs.add(comp, i));
          const type = Ours.getMoleculeType(component.type, comp);
          const chain = atoms[i].substring(21, 22);
          expect(ourEntities.getEntityId(comp, type, chain), `${name} atom ${i}`).toBe(theirEntities.getEntityId(comp, type as never, chain));
        }
        expect(ours.ids, name).toEqual((theirs as unknown as { ids: string[] }).ids);
        expect(ours.monNstdFlags, name).toEqual((theirs as unknown as { mon_nstd_flags: string[] }).mon_nstd_flags);
        const mol = theirEntities as unknown as { ids: string[]; types: string[]; descriptions: string[][] };
        expect({ ids: ourEntities.ids, types: ourEntities.types, descriptions: ourEntities.descriptions }, name).toEqual({
          ids: mol.ids,
          types: mol.types,
          descriptions: mol.descriptions,
        });
        entitiesSeen += mol.ids.length;
        // Mol*'s entity_poly_seq: the same entity per SEQRES chain, or the same failure.
        let molFailure: unknown;
        try {
          MolPdbEntity.getEntityPolySeq(seqresMap, (c: string) => theirEntities.getEntityIdForChain(c));
        } catch (error) {
          molFailure = error;
        }
        if (molFailure) expect(() => checkEntityPolySeq(seqresMap, ourEntities), name).toThrow((molFailure as Error).message);
        else expect(() => checkEntityPolySeq(seqresMap, ourEntities), name).not.toThrow();
        for (const chain of seqresMap.keys()) {
          if (!molFailure) expect(ourEntities.getEntityIdForChain(chain), `${name} ${chain}`).toBe(theirEntities.getEntityIdForChain(chain));
        }
      }
      expect(entitiesSeen).toBeGreaterThan(200);
    },
  );
});
