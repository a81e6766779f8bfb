/** Formats molvault reads. `cxs` is a ChimeraX session. */
export const FORMATS = ['pdb', 'cif', 'bcif', 'sdf', 'mol', 'mol2', 'xyz', 'cxs'] as const;
export type Format = (typeof FORMATS)[number];

/** Other names a client may give a format in an upload's or a draft's `format` field. */
export const FORMAT_ALIASES: Record<string, Format> = { mmcif: 'cif', ent: 'pdb', sd: 'sdf' };

export const FORMAT_LABELS: Record<Format, string> = {
  pdb: 'PDB',
  cif: 'mmCIF',
  bcif: 'BinaryCIF',
  sdf: 'SDF',
  mol: 'MOL',
  mol2: 'MOL2',
  xyz: 'XYZ',
  cxs: 'ChimeraX session',
};

export const MEDIA_TYPES: Record<Format, string> = {
  pdb: 'chemical/x-pdb',
  cif: 'chemical/x-mmcif',
  bcif: 'application/octet-stream',
  sdf: 'chemical/x-mdl-sdfile',
  mol: 'chemical/x-mdl-molfile',
  mol2: 'chemical/x-mol2',
  xyz: 'chemical/x-xyz',
  cxs: 'application/octet-stream',
};

export type Compression = 'gzip' | 'bzip2';

export interface StructureSummary {
  /** Atoms in the first model; in a file of several records (`records` set), atoms in all of them. */
  atoms: number;
  models: number;
  chains: number;
  residues: number;
  entities?: number;
  waters?: number;
  /** Hetero groups other than water: `name` is the component id (HEM), `description` its chemical name where the file gives one. */
  ligands?: { name: string; count: number; description?: string }[];
  elements?: Record<string, number>;
  formula?: string;
  /** Sum of standard atomic weights of the first model's atoms (g/mol; hydrogens only as the file has them). */
  molecularWeight?: number;
  /** Bonds the file declares (SDF/MOL, MOL2: first record); absent for formats without a bond table. */
  bonds?: number;
  title?: string;
  method?: string;
  resolution?: number;
  pdbId?: string;
  depositionDate?: string;
  hasAltlocs?: boolean;
  hasInsertionCodes?: boolean;
  /** For CIF: which kind of CIF held the coordinates when not mmCIF. */
  dialect?: 'coreCIF' | 'chemical component';
  /** Readable records in a multi-record file (SDF, MOL2); `models` counts frames or MODELs. */
  molecules?: number;
  /**
   * A file of more than one record (SDF/MOL2 molecules, XYZ frames) described as a whole. Then
   * `atoms`, `elements` and `bonds` count every record; `formula` and `molecularWeight` are set
   * only when every record has the same formula; the first record's own details are `firstRecord`.
   */
  records?: RecordsSummary;
  /** The first readable record of a multi-record file, labelled as such. */
  firstRecord?: FirstRecordSummary;
  bounds?: { min: [number, number, number]; max: [number, number, number] };
  /** ChimeraX sessions: the header's version, how the stored bytes are compressed, their size. */
  session?: { version: number; compression: 'lz4' | 'none'; bytes: number };
}

export interface RecordsSummary {
  /** Readable records (broken ones are skipped and reported). */
  count: number;
  totalAtoms: number;
  /** Fewest and most atoms in one record. */
  atomsPerRecord: { min: number; max: number };
  distinctFormulas: number;
  /** Distinct formulas (Hill order) in order of first appearance, at most RECORD_FORMULAS_LISTED. */
  formulas: string[];
}

export interface FirstRecordSummary {
  /** 1-based position of the record in the file. */
  index: number;
  atoms: number;
  formula: string;
  molecularWeight: number;
  elements: Record<string, number>;
  bonds?: number;
  title?: string;
}

/** How many distinct formulas a multi-record summary lists. */
export const RECORD_FORMULAS_LISTED = 20;

export interface Problem {
  code: string;
  message: string;
  line?: number;
}

export interface ValidationReport {
  /** What is wrong enough to refuse the file. Empty when accepted. */
  problems: Problem[];
  /** What is odd but kept. */
  warnings: Problem[];
  parser: string;
  parseMs: number;
}

export type ParseOutcome =
  | { ok: true; format: Format; kind: 'macromolecule' | 'small-molecule' | 'session' | 'other'; summary: StructureSummary; report: ValidationReport }
  | { ok: false; format?: Format; status: 415 | 422; code: string; message: string; report: ValidationReport };
