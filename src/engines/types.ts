import type { Format } from '../formats/types.js';

export const ENGINE_NAMES = ['chimerax', 'gemmi', 'openbabel'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export const ENGINE_LABELS: Record<EngineName, string> = { chimerax: 'ChimeraX', gemmi: 'gemmi', openbabel: 'Open Babel' };

/** What the source file is, as far as choosing an engine goes. */
export interface ConversionSource {
  format: Format;
  /** For CIF: set when the file is a small-molecule (coreCIF) or chemical-component CIF rather than mmCIF. */
  dialect?: string;
}

export interface ConversionRequest {
  input: string;
  from: Format;
  to: Format;
  /** The file to write, inside the job's scratch directory. */
  output: string;
  scratch: string;
  timeoutMs: number;
}

/**
 * What an engine had to do to the input to convert it, for the loss report: sentences, and chain
 * names it had to change (old → new).
 */
export interface ConversionNotes {
  notes: string[];
  chainNames?: Record<string, string>;
}

/** One way of running an engine: a command per job, or a long-lived process. */
export interface EngineDriver {
  readonly name: EngineName;
  readonly version: string;
  convert(request: ConversionRequest): Promise<ConversionNotes | undefined>;
  /** Starts long-lived processes ahead of the first job (no-op for command-line engines). */
  warm?(): Promise<void>;
  close?(): Promise<void>;
}

/**
 * What each engine can read and write, in molvault's format names. Preference when several can:
 * ChimeraX (when installed), then gemmi for macromolecules, then Open Babel.
 */
export const ENGINE_CAPABILITIES: Record<EngineName, { reads: readonly Format[]; writes: readonly Format[]; note: string }> = {
  chimerax: { reads: ['pdb', 'cif', 'sdf', 'mol', 'mol2'], writes: ['pdb', 'cif', 'mol2'], note: 'macromolecules and small molecules' },
  gemmi: { reads: ['pdb', 'cif'], writes: ['pdb', 'cif'], note: 'PDB ↔ mmCIF' },
  openbabel: {
    reads: ['sdf', 'mol', 'mol2', 'xyz', 'pdb', 'cif'],
    writes: ['sdf', 'mol', 'mol2', 'xyz', 'pdb'],
    note: 'small molecules (and small-molecule CIF)',
  },
};

export const ENGINE_PREFERENCE: readonly EngineName[] = ['chimerax', 'gemmi', 'openbabel'];

/**
 * Whether `engine` can turn `source` into `to`. gemmi and ChimeraX read a CIF as mmCIF, Open Babel
 * reads it as a small-molecule (core) CIF: each is given only the CIF it reads; a chemical-component
 * CIF is left to no engine rather than misread.
 */
export function engineCan(engine: EngineName, source: ConversionSource, to: Format): boolean {
  const capability = ENGINE_CAPABILITIES[engine];
  if (!capability.reads.includes(source.format) || !capability.writes.includes(to)) return false;
  if (source.format === 'cif') return engine === 'openbabel' ? source.dialect === 'coreCIF' : !source.dialect;
  return source.format !== to;
}

/** Engines that could make the conversion, installed or not, best first. */
export function enginesFor(source: ConversionSource, to: Format): EngineName[] {
  return ENGINE_PREFERENCE.filter((engine) => engineCan(engine, source, to));
}
