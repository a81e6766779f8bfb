/**
 * The residue-name sets and molecule typing of Mol* 5.11's model/types.js, which the PDB path and
 * the summary use, kept here because importing that module costs a parse thread start time and
 * puts a large element-symbol table on its heap that every major GC marks again (bench/README.md).
 * Mol*'s code-generated name lists (ions, lipids, saccharides) have no imports of their own and
 * are used as they are. test/formats.residueNames.test.ts checks every set and function here
 * against Mol*'s own on every name it knows and every residue name of the corpus.
 */

import { IonNames } from 'molstar/lib/mol-model/structure/model/types/ions.js';
import { LipidNames } from 'molstar/lib/mol-model/structure/model/types/lipids.js';
import { SaccharideNames } from 'molstar/lib/mol-model/structure/model/types/saccharides.js';

/** Mol*'s ElementSymbol: its table maps every 1–3 letter or digit string to its upper case, and anything else is upper-cased too. */
export function elementSymbol(symbol: string): string {
  return symbol.toUpperCase();
}

/** Mol*'s MoleculeType enum (the same numbers). */
export const MoleculeType = {
  Unknown: 0,
  Other: 1,
  Water: 2,
  Ion: 3,
  Lipid: 4,
  Protein: 5,
  RNA: 6,
  DNA: 7,
  PNA: 8,
  Saccharide: 9,
} as const;
export type MoleculeType = (typeof MoleculeType)[keyof typeof MoleculeType];

const union = (...sets: ReadonlySet<string>[]): ReadonlySet<string> => new Set(sets.flatMap((s) => [...s]));

export const DProteinComponentTypeNames: ReadonlySet<string> = new Set([
  'd-peptide linking',
  'd-peptide nh3 amino terminus',
  'd-peptide cooh carboxy terminus',
  'd-gamma-peptide, c-delta linking',
  'd-beta-peptide, c-gamma linking',
]);
export const LProteinComponentTypeNames: ReadonlySet<string> = new Set([
  'l-peptide linking',
  'l-peptide nh3 amino terminus',
  'l-peptide cooh carboxy terminus',
  'l-gamma-peptide, c-delta linking',
  'l-beta-peptide, c-gamma linking',
]);
export const OtherProteinComponentTypeNames: ReadonlySet<string> = new Set(['peptide linking', 'peptide-like']);
export const ProteinComponentTypeNames = union(DProteinComponentTypeNames, LProteinComponentTypeNames, OtherProteinComponentTypeNames);
export const DNAComponentTypeNames: ReadonlySet<string> = new Set(['dna linking', 'l-dna linking', 'dna oh 5 prime terminus', 'dna oh 3 prime terminus']);
export const RNAComponentTypeNames: ReadonlySet<string> = new Set(['rna linking', 'l-rna linking', 'rna oh 5 prime terminus', 'rna oh 3 prime terminus']);
export const SaccharideComponentTypeNames = union(
  new Set([
    'd-saccharide, beta linking',
    'l-saccharide, beta linking',
    'd-saccharide, alpha linking',
    'l-saccharide, alpha linking',
    'l-saccharide',
    'd-saccharide',
    'saccharide',
  ]),
  new Set(['d-saccharide 1,4 and 1,4 linking', 'l-saccharide 1,4 and 1,4 linking', 'd-saccharide 1,4 and 1,6 linking', 'l-saccharide 1,4 and 1,6 linking']),
);
export const OtherComponentTypeNames: ReadonlySet<string> = new Set(['non-polymer', 'other']);

export const WaterNames: ReadonlySet<string> = new Set(['SOL', 'WAT', 'HOH', 'H2O', 'W', 'DOD', 'D3O', 'TIP', 'TIP3', 'TIP4', 'SPC']);
export const AminoAcidNamesL: ReadonlySet<string> = new Set(
  'HIS ARG LYS ILE PHE LEU TRP ALA MET PRO CYS ASN VAL GLY SER GLN TYR ASP GLU THR SEC PYL UNK MSE SEP TPO PTR PCA HYP HSD HSE HSP LSN ASPP GLUP HID HIE HIP LYN ASH GLH'.split(
    ' ',
  ),
);
export const AminoAcidNamesD: ReadonlySet<string> = new Set('DAL DAR DSG DAS DCY DGL DGN DHI DIL DLE DLY MED DPN DPR DSN DTH DTR DTY DVA DNE'.split(' '));
export const AminoAcidNames = union(AminoAcidNamesL, AminoAcidNamesD);
export const RnaBaseNames: ReadonlySet<string> = new Set(['A', 'C', 'T', 'G', 'I', 'U', 'N']);
export const DnaBaseNames: ReadonlySet<string> = new Set(['DA', 'DC', 'DT', 'DG', 'DI', 'DU', 'DN']);
export const PeptideBaseNames: ReadonlySet<string> = new Set(['APN', 'CPN', 'TPN', 'GPN']);
export const BaseNames = union(RnaBaseNames, DnaBaseNames, PeptideBaseNames);
export const PolymerNames = union(AminoAcidNames, BaseNames);

/**
 * The names Mol*'s SaccharideCompIdMap (carbohydrates/constants.js, the default map) holds: its
 * generated list of CCD saccharides and the CHARMM names it adds. Only membership is used here;
 * that module loads Mol*'s colour code with it.
 */
export const SaccharideCompIds = union(
  SaccharideNames,
  new Set(
    'AGLC BGLC AMAN BMAN AGAL BGAL AGUL BGUL AALT BALT AALL BALL ATAL BTAL AIDO BIDO AGLCNA BGLCNA BGLCN0 AGALNA BGALNA AGLCA BGLCA BGLCA0 AIDOA BIDOA ARHM BRHM AFUC BFUC AARB BARB ALYF BLYF AXYL BXYL AXYF BXYF ARIB BRIB ANE5AC BNE5AC AFRU BFRU'.split(
      ' ',
    ),
  ),
);

/** Mol*'s getMoleculeType: the molecule type from a component's type and id. */
export function getMoleculeType(compType: string, compId: string): MoleculeType {
  const id = compId.toUpperCase();
  if (PeptideBaseNames.has(id)) return MoleculeType.PNA;
  if (ProteinComponentTypeNames.has(compType)) return MoleculeType.Protein;
  if (RNAComponentTypeNames.has(compType)) return MoleculeType.RNA;
  if (DNAComponentTypeNames.has(compType)) return MoleculeType.DNA;
  if (SaccharideComponentTypeNames.has(compType)) return MoleculeType.Saccharide;
  if (WaterNames.has(id)) return MoleculeType.Water;
  if (IonNames.has(id)) return MoleculeType.Ion;
  if (LipidNames.has(id)) return MoleculeType.Lipid;
  if (OtherComponentTypeNames.has(compType)) {
    if (SaccharideCompIds.has(id)) return MoleculeType.Saccharide;
    if (AminoAcidNames.has(id)) return MoleculeType.Protein;
    if (RnaBaseNames.has(id)) return MoleculeType.RNA;
    if (DnaBaseNames.has(id)) return MoleculeType.DNA;
    return MoleculeType.Other;
  }
  return MoleculeType.Unknown;
}

/** Mol*'s isPolymer: nucleic (DNA, RNA, PNA) or protein. */
export function isPolymer(type: MoleculeType): boolean {
  return type === MoleculeType.DNA || type === MoleculeType.RNA || type === MoleculeType.PNA || type === MoleculeType.Protein;
}
