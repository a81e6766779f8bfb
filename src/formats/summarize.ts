import { PolymerNames, WaterNames } from 'molstar/lib/mol-model/structure/model/types.js';
import type { Model } from 'molstar/lib/mol-model/structure.js';
import { atomicWeight } from './elements.js';
import type { Problem, StructureSummary } from './types.js';

const WATER = new Set(['HOH', 'WAT', 'DOD', 'H2O', 'SOL', 'TIP', 'TIP3', 'SPC']);

/** Hill order: C first, then H, then the rest alphabetically; without carbon, all alphabetically. */
export function hillFormula(elements: Record<string, number>): string {
  const symbols = Object.keys(elements).filter((s) => s !== '' && s !== '?');
  const hasCarbon = 'C' in elements;
  symbols.sort((a, b) => {
    if (hasCarbon) {
      const rank = (s: string) => (s === 'C' ? 0 : s === 'H' ? 1 : 2);
      if (rank(a) !== rank(b)) return rank(a) - rank(b);
    }
    return a.localeCompare(b);
  });
  return symbols.map((s) => `${s}${elements[s] === 1 ? '' : elements[s]}`).join(' ');
}

function normaliseElement(symbol: string): string {
  const s = symbol.trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1).toLowerCase();
}

/** Sum of standard atomic weights; symbols that are not elements (?, X, LP) count as nothing. */
export function molecularWeight(elements: Record<string, number>): number {
  let total = 0;
  for (const [symbol, count] of Object.entries(elements)) total += (atomicWeight(symbol) ?? 0) * count;
  return Math.round(total * 1000) / 1000;
}

/**
 * Reads the counts, composition and bounds of one Mol* model. Problems found on the way
 * (non-finite coordinates, missing elements) are pushed onto `problems` / `warnings`.
 * `residueChecks` turns on what only makes sense for residue-based formats (PDB, mmCIF):
 * duplicate atoms within a residue and residues the file does not describe.
 */
export function summarizeModel(model: Model, problems: Problem[], warnings: Problem[], residueChecks = false): StructureSummary {
  const { atoms, residues, chains, residueAtomSegments, chainAtomSegments, index } = model.atomicHierarchy;
  const { x, y, z } = model.atomicConformation;
  const atomCount = atoms._rowCount;

  const elements: Record<string, number> = {};
  let missingElements = 0;
  let hasAltlocs = false;
  const min: [number, number, number] = [Infinity, Infinity, Infinity];
  const max: [number, number, number] = [-Infinity, -Infinity, -Infinity];
  let nonFinite = 0;
  let absurd = 0;
  for (let i = 0; i < atomCount; i++) {
    const element = normaliseElement(atoms.type_symbol.value(i));
    if (!element || element === 'X') missingElements++;
    elements[element || '?'] = (elements[element || '?'] ?? 0) + 1;
    if (!hasAltlocs && atoms.label_alt_id.value(i) !== '') hasAltlocs = true;
    const cx = x[i];
    const cy = y[i];
    const cz = z[i];
    if (!Number.isFinite(cx) || !Number.isFinite(cy) || !Number.isFinite(cz)) {
      nonFinite++;
      continue;
    }
    if (Math.abs(cx) > 1e5 || Math.abs(cy) > 1e5 || Math.abs(cz) > 1e5) absurd++;
    if (cx < min[0]) min[0] = cx;
    if (cy < min[1]) min[1] = cy;
    if (cz < min[2]) min[2] = cz;
    if (cx > max[0]) max[0] = cx;
    if (cy > max[1]) max[1] = cy;
    if (cz > max[2]) max[2] = cz;
  }
  if (nonFinite > 0) {
    problems.push({ code: 'non_finite_coordinates', message: `${nonFinite} atom(s) have coordinates that are not finite numbers.` });
  }
  if (absurd > 0) {
    warnings.push({ code: 'absurd_coordinates', message: `${absurd} atom(s) lie more than 100,000 Å from the origin.` });
  }
  if (missingElements > 0) {
    warnings.push({ code: 'missing_elements', message: `${missingElements} atom(s) have no chemical element.` });
  }

  const entityTypes = model.entities.data.type;
  const ligandCounts = new Map<string, number>();
  const components = model.properties.chemicalComponentMap;
  const undescribed = new Set<string>();
  let duplicates = 0;
  let firstDuplicate: string | undefined;
  let waters = 0;
  let hasInsertionCodes = false;
  const names = new Set<string>();
  for (let r = 0; r < residues._rowCount; r++) {
    if (!hasInsertionCodes && residues.pdbx_PDB_ins_code.value(r) !== '') hasInsertionCodes = true;
    const firstAtom = residueAtomSegments.offsets[r];
    const comp = atoms.label_comp_id.value(firstAtom);
    if (residueChecks) {
      const end = residueAtomSegments.offsets[r + 1];
      names.clear();
      for (let a = firstAtom; a < end; a++) {
        const key = `${atoms.label_atom_id.value(a)}\u0000${atoms.label_alt_id.value(a)}`;
        if (names.has(key)) {
          duplicates++;
          firstDuplicate ??= `${atoms.label_atom_id.value(a)} of ${comp} ${residues.auth_seq_id.value(r)}${residues.pdbx_PDB_ins_code.value(r)} in chain ${chains.auth_asym_id.value(chainAtomSegments.index[a])}`;
        } else names.add(key);
      }
      if (!PolymerNames.has(comp) && !WaterNames.has(comp) && !components.get(comp)?.name) undescribed.add(comp);
    }
    const chain = chainAtomSegments.index[firstAtom];
    const entity = index.getEntityFromChain(chain as never);
    const type = entity >= 0 ? entityTypes.value(entity) : undefined;
    if (type === 'water' || WATER.has(comp)) {
      waters++;
    } else if (type === 'non-polymer') {
      ligandCounts.set(comp, (ligandCounts.get(comp) ?? 0) + 1);
    }
  }
  if (duplicates > 0) {
    warnings.push({
      code: 'duplicate_atoms',
      message: `${duplicates} atom(s) repeat a name (and alternate location) already used in their residue, e.g. ${firstDuplicate}.`,
    });
  }
  if (undescribed.size > 0) {
    const list = [...undescribed].slice(0, 10).join(', ');
    warnings.push({
      code: 'unknown_residues',
      message: `${undescribed.size} residue type(s) are neither standard amino acids, nucleotides or water nor described in the file (no HETNAM or chem_comp name): ${list}${undescribed.size > 10 ? ', ...' : ''}.`,
    });
  }
  const authChains = new Set<string>();
  for (let c = 0; c < chains._rowCount; c++) authChains.add(chains.auth_asym_id.value(c));

  const summary: StructureSummary = {
    atoms: atomCount,
    models: 1,
    chains: authChains.size,
    residues: residues._rowCount,
    entities: model.entities.data._rowCount,
    waters,
    ligands: [...ligandCounts.entries()]
      .map(([name, count]) => {
        const description = components.get(name)?.name?.trim();
        return description && description !== '?' && description !== name ? { name, count, description } : { name, count };
      })
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
    elements,
    formula: hillFormula(elements),
    molecularWeight: molecularWeight(elements),
    hasAltlocs,
    hasInsertionCodes,
  };
  if (Number.isFinite(min[0])) summary.bounds = { min: min.map(round3) as Vec3, max: max.map(round3) as Vec3 };
  return summary;
}

type Vec3 = [number, number, number];
const round3 = (v: number) => Math.round(v * 1000) / 1000;
