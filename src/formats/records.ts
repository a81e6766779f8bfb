/**
 * A multi-record file (an SDF library, a MOL2 of several molecules, an XYZ trajectory) described
 * as a whole: how many records, atoms in all and per record, the distinct formulas. The summary of
 * the first record, which Mol*'s model gives, becomes `firstRecord`, labelled as such.
 */
import type { MolFile } from 'molstar/lib/mol-io/reader/mol/parser.js';
import type { Mol2File } from 'molstar/lib/mol-io/reader/mol2/schema.js';
import type { XyzFile } from 'molstar/lib/mol-io/reader/xyz/parser.js';
import { guessElementSymbolString } from 'molstar/lib/mol-model-formats/structure/util.js';
import { countElements, hillFormula, molecularWeight } from './summarize.js';
import { RECORD_FORMULAS_LISTED, type StructureSummary } from './types.js';

/** One record's composition. */
export interface RecordComposition {
  index: number;
  atoms: number;
  elements: Record<string, number>;
  bonds?: number;
}

export function sdfCompositions(molFiles: MolFile[], indexes: number[], bonds: (number | undefined)[]): RecordComposition[] {
  return molFiles.map((mol, k) => {
    const symbols = mol.atoms.type_symbol;
    const read = (i: number) => symbols.value(i);
    return { index: indexes[k], atoms: mol.atoms.count, elements: countElements(mol.atoms.count, read, read), bonds: bonds[k] };
  });
}

/** As Mol*'s MOL2 model reads elements: the SYBYL type before its dot, else a guess from the atom name. */
export function mol2Compositions(file: Mol2File, indexes: number[], bonds: (number | undefined)[]): RecordComposition[] {
  return file.structures.map(({ atoms }, k) => {
    let typed = false;
    for (let i = 0; i < atoms.count && !typed; i++) typed = atoms.atom_type.value(i).includes('.');
    const symbol = (i: number) =>
      typed
        ? atoms.atom_type.value(i).split('.')[0].toUpperCase()
        : guessElementSymbolString(atoms.atom_name.value(i), atoms.subst_name.value(i).replace(/\d+$/, '') || 'MOL');
    return { index: indexes[k], atoms: atoms.count, elements: countElements(atoms.count, symbol, (i) => atoms.atom_name.value(i)), bonds: bonds[k] };
  });
}

export function xyzCompositions(file: XyzFile, indexes: number[]): RecordComposition[] {
  return file.molecules.map((m, k) => {
    const read = (i: number) => m.type_symbol.value(i);
    return { index: indexes[k], atoms: m.count, elements: countElements(m.count, read, read) };
  });
}

/**
 * Rewrites the summary of the first record (as summarizeAtoms made it) into the whole file's,
 * when the file holds more than one record; a one-record file is left as it is.
 */
export function describeRecords(summary: StructureSummary, records: RecordComposition[]): void {
  if (records.length < 2) return;
  const first = records[0];
  const elements: Record<string, number> = {};
  const formulas = new Map<string, number>();
  let totalAtoms = 0;
  let totalBonds = 0;
  let bondsKnown = true;
  let min = Infinity;
  let max = 0;
  for (const record of records) {
    totalAtoms += record.atoms;
    min = Math.min(min, record.atoms);
    max = Math.max(max, record.atoms);
    if (record.bonds === undefined) bondsKnown = false;
    else totalBonds += record.bonds;
    for (const [element, count] of Object.entries(record.elements)) elements[element] = (elements[element] ?? 0) + count;
    const formula = hillFormula(record.elements);
    formulas.set(formula, (formulas.get(formula) ?? 0) + 1);
  }
  summary.firstRecord = {
    index: first.index,
    atoms: summary.atoms,
    formula: summary.formula ?? hillFormula(first.elements),
    molecularWeight: summary.molecularWeight ?? molecularWeight(first.elements),
    elements: summary.elements ?? first.elements,
    ...(summary.bonds !== undefined ? { bonds: summary.bonds } : {}),
    ...(summary.title !== undefined ? { title: summary.title } : {}),
  };
  summary.records = {
    count: records.length,
    totalAtoms,
    atomsPerRecord: { min, max },
    distinctFormulas: formulas.size,
    formulas: [...formulas.keys()].slice(0, RECORD_FORMULAS_LISTED),
  };
  summary.atoms = totalAtoms;
  summary.elements = elements;
  if (bondsKnown) summary.bonds = totalBonds;
  else delete summary.bonds;
  // One formula for every record (a trajectory, conformers) is the file's; several are not.
  if (formulas.size === 1) {
    summary.formula = summary.firstRecord.formula;
    summary.molecularWeight = summary.firstRecord.molecularWeight;
  } else {
    delete summary.formula;
    delete summary.molecularWeight;
  }
  // The first record's title is not the file's.
  delete summary.title;
}
