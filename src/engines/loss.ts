import { FORMAT_LABELS, type Format, type StructureSummary } from '../formats/types.js';
import type { ChemistryFacts } from './inspect.js';

type Value = number | string | boolean | null;

export interface LossChange {
  property: string;
  /** lost: the output lacks what the source had; changed: both have it, differently; added: only the output has it. */
  kind: 'lost' | 'changed' | 'added';
  source: Value;
  output: Value;
  /** Why, when the target format is the reason (it cannot hold the property). */
  note?: string;
}

/** What a conversion changed, compared on the source summary and the parsed output. */
export interface LossReport {
  from: Format;
  to: Format;
  /** True when something the source had is missing or different in the output (additions do not count). */
  lossy: boolean;
  changes: LossChange[];
  /** Properties that were compared and agree. */
  kept: string[];
  /** Properties one side does not record, so they could not be compared. */
  notCompared: string[];
  /** What the engines had to do to the input to convert it (an engine that refused it, a record read differently). */
  notes?: string[];
  /** Chain names the target format cannot hold, and what they became (old → new). */
  chainNames?: Record<string, string>;
}

export interface Side {
  format: Format;
  summary: StructureSummary;
  chemistry: ChemistryFacts;
}

const SUMMARY_PROPERTIES = ['atoms', 'chains', 'residues'] as const;
const MODEL_FORMATS: readonly Format[] = ['pdb', 'cif', 'bcif'];

/**
 * How many records a file holds: SDF/MOL and MOL2 molecules, XYZ frames, PDB/mmCIF models. A
 * 5-frame XYZ written as SDF is 5 records either way, though one calls them models and the other
 * molecules.
 */
export function recordCount(format: Format, summary: StructureSummary): number {
  if (summary.records) return summary.records.count;
  if (format === 'sdf' || format === 'mol' || format === 'mol2') return summary.molecules ?? 1;
  return summary.models;
}

/** The formula, or for a file of records with several, its distinct formulas. */
function formulaOf(summary: StructureSummary): string | undefined {
  if (summary.formula !== undefined) return summary.formula;
  const records = summary.records;
  if (!records) return undefined;
  return `${records.formulas.join(', ')}${records.distinctFormulas > records.formulas.length ? `, ... (${records.distinctFormulas} formulas)` : ''}`;
}
const CHEMISTRY_PROPERTIES = ['bonds', 'formalCharge', 'chargedAtoms', 'partialCharges'] as const;

/** The loss report with what the engine said it had to do: its notes, and renamed chains as a change. */
export function withEngineNotes(report: LossReport, notes: { notes: string[]; chainNames?: Record<string, string> } | undefined): LossReport {
  if (!notes) return report;
  const result: LossReport = { ...report, notes: notes.notes };
  const renamed = Object.entries(notes.chainNames ?? {});
  if (renamed.length > 0) {
    result.chainNames = notes.chainNames;
    result.changes = [
      ...report.changes,
      {
        property: 'chainNames',
        kind: 'changed',
        source: renamed.map(([old]) => old).join(','),
        output: renamed.map(([, now]) => now).join(','),
        note: `${FORMAT_LABELS[report.to]} files cannot hold chain names this long.`,
      },
    ];
    result.lossy = true;
  }
  return result;
}

/**
 * Compares source and output: atoms, models (between PDB and mmCIF) or records (SDF/MOL2
 * molecules, XYZ frames and models across formats), chains, residues, formula, bonds, charges.
 */
export function lossReport(source: Side, output: Side): LossReport {
  const changes: LossChange[] = [];
  const kept: string[] = [];
  const notCompared: string[] = [];
  const compare = (property: string, a: Value | undefined, b: Value | undefined, outputHasNone: boolean) => {
    if (a === undefined || (b === undefined && !outputHasNone)) {
      notCompared.push(property);
      return;
    }
    const out = b === undefined ? null : b;
    if (a === out) {
      kept.push(property);
      return;
    }
    const absent = (v: Value) => v === null || v === false;
    // Nothing to lose: the source did not have it either.
    if ((absent(a) || a === 0) && out === null) {
      kept.push(property);
      return;
    }
    changes.push({
      property,
      kind: absent(a) ? 'added' : out === null ? 'lost' : 'changed',
      source: a,
      output: out,
      ...(out === null ? { note: `${FORMAT_LABELS[output.format]} files cannot hold ${property === 'bonds' ? 'bonds' : 'this'}.` } : {}),
    });
  };
  for (const property of SUMMARY_PROPERTIES) {
    compare(property, source.summary[property], output.summary[property], false);
  }
  if (MODEL_FORMATS.includes(source.format) && MODEL_FORMATS.includes(output.format)) {
    compare('models', source.summary.models, output.summary.models, false);
  } else {
    compare('records', recordCount(source.format, source.summary), recordCount(output.format, output.summary), false);
  }
  compare('formula', formulaOf(source.summary), formulaOf(output.summary), false);
  for (const property of CHEMISTRY_PROPERTIES) {
    const b = output.chemistry[property];
    compare(property, source.chemistry[property], b, b === null);
  }
  return { from: source.format, to: output.format, lossy: changes.some((c) => c.kind !== 'added'), changes, kept, notCompared };
}

/** The loss report in one header line: `none`, or `bonds=21->none; formula=C9 H8 O4->C9 O4`. */
export function lossHeader(report: LossReport): string {
  if (report.changes.length === 0) return 'none';
  const show = (v: Value) => (v === null ? 'none' : String(v));
  return report.changes
    .map((c) => `${c.property}=${show(c.source)}->${show(c.output)}`)
    .join('; ')
    .replace(/[^\x20-\x7e]/g, '?');
}
