/**
 * What a conversion can lose beyond the structure summary: bonds and charges. Read with Mol*'s
 * readers for the formats that carry them explicitly (SDF/MOL, MOL2, and XYZ, which has none).
 * Runs inside piscina threads (see src/pool/tasks.ts).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { MolFile } from 'molstar/lib/mol-io/reader/mol/parser.js';
import { parseMol } from 'molstar/lib/mol-io/reader/mol/parser.js';
import { parseMol2 } from 'molstar/lib/mol-io/reader/mol2/parser.js';
import { parseSdf } from 'molstar/lib/mol-io/reader/sdf/parser.js';
import { parseStructure } from '../formats/parse.js';
import { sniffFormat } from '../formats/sniff.js';
import type { Format, ParseOutcome } from '../formats/types.js';

export interface ChemistryFacts {
  /** Bonds of the first molecule; null when the format cannot hold bonds (XYZ). Absent when not read. */
  bonds?: number | null;
  /** Net formal charge and charged atoms of the first molecule (SDF/MOL); null when the format has no formal charges. */
  formalCharge?: number | null;
  chargedAtoms?: number | null;
  /** Whether the first molecule carries partial charges (MOL2); null when the format has none. */
  partialCharges?: boolean | null;
}

function molFacts(mol: MolFile): ChemistryFacts {
  let net = 0;
  let charged = 0;
  // "M  CHG" lines replace the atom block's charge column when present (V2000 rule).
  if (mol.formalCharges.atomIdx.rowCount > 0) {
    for (let i = 0; i < mol.formalCharges.charge.rowCount; i++) {
      const charge = mol.formalCharges.charge.value(i);
      net += charge;
      if (charge !== 0) charged++;
    }
  } else {
    for (let i = 0; i < mol.atoms.count; i++) {
      const charge = mol.atoms.formal_charge.value(i);
      net += charge;
      if (charge !== 0) charged++;
    }
  }
  return { bonds: mol.bonds.count, formalCharge: net, chargedAtoms: charged, partialCharges: null };
}

/** Bonds and charges of the first molecule in `text`, for the formats that carry them; {} for the others. */
export async function chemistryFacts(text: string, format: Format): Promise<ChemistryFacts> {
  switch (format) {
    case 'sdf': {
      const result = await parseSdf(text).run();
      const first = result.isError ? undefined : result.result.compounds[0];
      return first ? molFacts(first.molFile) : {};
    }
    case 'mol': {
      const result = await parseMol(text).run();
      return result.isError ? {} : molFacts(result.result);
    }
    case 'mol2': {
      const result = await parseMol2(text, 'conversion').run();
      const first = result.isError ? undefined : result.result.structures[0];
      if (!first) return {};
      let partial = false;
      if (!/^NO_CHARGES$/i.test(first.molecule.charge_type.trim())) {
        for (let i = 0; i < first.atoms.count && !partial; i++) if (first.atoms.charge.value(i) !== 0) partial = true;
      }
      return { bonds: first.bonds.count, formalCharge: null, chargedAtoms: null, partialCharges: partial };
    }
    case 'xyz':
      return { bonds: null, formalCharge: null, chargedAtoms: null, partialCharges: null };
    default:
      return {};
  }
}

export interface InspectTask {
  path: string;
  format: Format;
  /** Parse and check the whole file (a conversion output); otherwise only read bonds and charges. */
  validate: boolean;
}

export interface InspectResult {
  /** With `validate`: the parse outcome, the content hash and size, and the format the bytes look like. */
  outcome?: ParseOutcome;
  sha256?: string;
  size?: number;
  sniffed?: Format;
  chemistry: ChemistryFacts;
}

/** Reads a file once: its hash, sniffed format and parse outcome (when validating), its bonds and charges. */
export async function inspect(task: InspectTask): Promise<InspectResult> {
  const bytes = await fs.readFile(task.path);
  const text = bytes.toString('latin1');
  if (!task.validate) return { chemistry: await chemistryFacts(text, task.format) };
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const sniffed = sniffFormat(bytes.subarray(0, 64 * 1024)).format;
  const outcome = await parseStructure(text, task.format);
  const chemistry = outcome.ok ? await chemistryFacts(text, task.format) : {};
  return { outcome, sha256, size: bytes.length, sniffed, chemistry };
}
