/**
 * Elements of a small-molecule (core) CIF that has no `_atom_site_type_symbol`. Mol* then guesses
 * from the label's first letter (Ca1 → C, Ti1 → nothing), so the elements are read from the labels
 * the way crystallographic programs do: the longest element symbol the label starts with, its
 * digits, charges and suffixes dropped (Ca1 → Ca, C1A → C, O1W → O, Fe2+ → Fe). Where the label's
 * case leaves it open (CA1: calcium or a carbon "A"?), `_chemical_formula_sum` decides when the
 * file has one. Every guess is reported: the file did not say.
 */
import type { CifCategory, CifFrame } from 'molstar/lib/mol-io/reader/cif.js';
import { isElementSymbol } from './elements.js';
import type { Problem } from './types.js';

/** A core CIF item (`_atom_site_label`): Mol* keeps each undotted name as a category of its own. */
function item(frame: CifFrame, name: string): CifCategory | undefined {
  const exact = frame.categories[name];
  if (exact) return exact;
  const lower = name.toLowerCase();
  const other = Object.keys(frame.categories).find((n) => n.toLowerCase() === lower);
  return other ? frame.categories[other] : undefined;
}

/** The elements `_chemical_formula_sum` names ('C20 H28 O2', 'Cl3 Cs In0.07 Sn0.9'), or undefined without one. */
export function formulaSumElements(formula: string | undefined): Set<string> | undefined {
  if (!formula || formula === '?' || formula === '.') return undefined;
  const elements = new Set<string>();
  for (const match of formula.matchAll(/([A-Z][a-z]?)\s*[0-9.]*/g)) if (isElementSymbol(match[1])) elements.add(match[1]);
  return elements.size > 0 ? elements : undefined;
}

export interface LabelElement {
  /** The element symbol (Ca), or '' when the label starts with none. */
  element: string;
  /** More than one element fits the label and nothing in the file told them apart. */
  ambiguous: boolean;
  /** The formula names none of the elements the label could be. */
  outsideFormula: boolean;
}

/** The element an atom label names (see the file comment); `formula` is the set `_chemical_formula_sum` gives, if any. */
export function elementFromLabel(label: string, formula?: Set<string>): LabelElement {
  const letters = /[A-Za-z]+/.exec(label)?.[0] ?? '';
  if (!letters) return { element: '', ambiguous: false, outsideFormula: false };
  const one = letters[0].toUpperCase();
  const two = letters.length >= 2 ? one + letters[1].toLowerCase() : '';
  // Longest first: Cl before C.
  const candidates = [two, one].filter((s) => s !== '' && isElementSymbol(s));
  if (candidates.length === 0) return { element: '', ambiguous: false, outsideFormula: false };
  if (formula) {
    const listed = candidates.find((s) => formula.has(s));
    if (listed) return { element: listed, ambiguous: false, outsideFormula: false };
    return { element: candidates[0], ambiguous: candidates.length > 1, outsideFormula: true };
  }
  // "Ca1" says calcium; "CA1" (capitals throughout) may be calcium or a carbon named A.
  const caseDecides = letters.length < 2 || letters[1] === letters[1].toLowerCase();
  return { element: candidates[0], ambiguous: candidates.length > 1 && !caseDecides, outsideFormula: false };
}

const listed = (items: string[], limit = 8) => `${items.slice(0, limit).join(', ')}${items.length > limit ? ', ...' : ''}`;

/**
 * For a core CIF block without `_atom_site_type_symbol`: each site's element from its label, in
 * row order, with warnings saying so (and where the formula disagrees). Undefined when the block
 * has type symbols (Mol* reads those) or no labels.
 */
export function coreCifElements(frame: CifFrame, warnings: Problem[]): string[] | undefined {
  if (item(frame, 'atom_site_type_symbol')) return undefined;
  const labels = item(frame, 'atom_site_label')?.getField('');
  if (!labels) return undefined;
  const formulaText = item(frame, 'chemical_formula_sum')?.getField('')?.str(0).trim();
  const formula = formulaSumElements(formulaText);
  const elements: string[] = [];
  const examples = new Map<string, string>();
  const ambiguous: string[] = [];
  const outside: string[] = [];
  const unknown: string[] = [];
  for (let row = 0; row < labels.rowCount; row++) {
    const label = labels.str(row);
    const guess = elementFromLabel(label, formula);
    elements.push(guess.element);
    if (!guess.element) unknown.push(label);
    else if (!examples.has(guess.element)) examples.set(guess.element, label);
    if (guess.ambiguous) ambiguous.push(`${label} → ${guess.element}`);
    if (guess.outsideFormula) outside.push(`${label} → ${guess.element}`);
  }
  const mapping = [...examples].map(([element, label]) => `${label} → ${element}`);
  warnings.push({
    code: 'elements_from_labels',
    message: `The small-molecule CIF has no _atom_site_type_symbol: the elements of its ${labels.rowCount} site(s) were inferred from their labels (${listed(mapping)})${formula ? `, checked against _chemical_formula_sum '${formulaText}'` : ''}.`,
  });
  if (ambiguous.length > 0) {
    warnings.push({
      code: 'element_label_ambiguous',
      message: `${ambiguous.length} label(s) could name more than one element and the file has no _chemical_formula_sum to decide; read as ${listed(ambiguous)}.`,
    });
  }
  if (formula) {
    const found = new Set(elements.filter((e) => e !== ''));
    const missing = [...formula].filter((e) => !found.has(e));
    if (outside.length > 0 || missing.length > 0) {
      const parts: string[] = [];
      if (outside.length > 0) parts.push(`labels name elements it does not list (${listed(outside)})`);
      if (missing.length > 0) parts.push(`no site was read as ${missing.join(', ')}`);
      warnings.push({
        code: 'elements_formula_mismatch',
        message: `The elements inferred from the labels do not match _chemical_formula_sum '${formulaText}': ${parts.join('; ')}.`,
      });
    }
  }
  if (unknown.length > 0) {
    warnings.push({ code: 'element_label_unknown', message: `${unknown.length} label(s) start with no element symbol: ${listed(unknown)}.` });
  }
  return elements;
}
