import { sniffSession } from './session.js';
import type { Compression, Format } from './types.js';

/** Compression by magic bytes. */
export function sniffCompression(head: Uint8Array): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  return undefined;
}

const BINARY_SIGNATURES: { name: string; bytes: number[] }[] = [
  { name: 'a PNG image', bytes: [0x89, 0x50, 0x4e, 0x47] },
  { name: 'a JPEG image', bytes: [0xff, 0xd8, 0xff] },
  { name: 'a GIF image', bytes: [0x47, 0x49, 0x46, 0x38] },
  { name: 'a PDF document', bytes: [0x25, 0x50, 0x44, 0x46] },
  { name: 'a ZIP archive (use the bulk import endpoint for archives)', bytes: [0x50, 0x4b, 0x03, 0x04] },
  { name: 'an xz archive', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a] },
  { name: 'a Zstandard stream', bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: 'an ELF executable', bytes: [0x7f, 0x45, 0x4c, 0x46] },
];

export type SniffResult = { format: Format; confidence: 'certain' | 'likely' } | { format: undefined; reason: string };

/**
 * Detects the format from the first bytes of the (uncompressed) content. The file name and a
 * declared format are only hints; the content decides.
 */
export function sniffFormat(head: Uint8Array): SniffResult {
  if (head.length === 0) return { format: undefined, reason: 'The file is empty.' };
  for (const signature of BINARY_SIGNATURES) {
    if (signature.bytes.every((byte, i) => head[i] === byte)) {
      return { format: undefined, reason: `The file is ${signature.name}, not a molecular structure.` };
    }
  }
  // Before the binary check: a session is binary after its header line, or LZ4-framed.
  const session = sniffSession(head);
  if (session) return session;
  if (looksLikeBinaryCif(head)) return { format: 'bcif', confidence: 'likely' };
  if (isMostlyBinary(head)) {
    return { format: undefined, reason: 'The file is binary data that molvault does not recognise as any structure format.' };
  }
  const text = new TextDecoder('latin1').decode(head);
  const lines = text.split(/\r?\n/);
  // Drop the last line: it may be cut in the middle.
  if (lines.length > 1 && !/\n$/.test(text)) lines.pop();

  if (lines.some((l) => l.startsWith('@<TRIPOS>'))) return { format: 'mol2', confidence: 'certain' };

  const firstContent = lines.find((l) => l.trim() !== '' && !l.startsWith('#'));
  if (firstContent && /^data_/i.test(firstContent.trim())) return { format: 'cif', confidence: 'certain' };

  if (lines.every((l) => l.trim() === '')) return { format: undefined, reason: 'The file holds only blank lines.' };

  if (isMolfile(lines)) {
    const isMulti = lines.some((l) => l.startsWith('$$$$')) || lines.some((l) => /^>\s*</.test(l));
    return { format: isMulti ? 'sdf' : 'mol', confidence: 'certain' };
  }

  if (isXyz(lines)) return { format: 'xyz', confidence: 'likely' };

  const pdbRecords = lines.filter((l) => PDB_RECORD.test(l)).length;
  const contentLines = lines.filter((l) => l.trim() !== '').length;
  if (pdbRecords > 0 && pdbRecords >= contentLines * 0.5) return { format: 'pdb', confidence: 'likely' };

  return {
    format: undefined,
    reason: 'The content does not look like PDB, mmCIF, SDF/MOL, MOL2, XYZ or a ChimeraX session.',
  };
}

const PDB_RECORD =
  /^(HEADER|OBSLTE|TITLE |SPLIT |CAVEAT|COMPND|SOURCE|KEYWDS|EXPDTA|NUMMDL|MDLTYP|AUTHOR|REVDAT|SPRSDE|JRNL {2}|REMARK|DBREF |DBREF1|DBREF2|SEQADV|SEQRES|MODRES|HET {3}|HETNAM|HETSYN|FORMUL|HELIX |SHEET |SSBOND|LINK {2}|LINKR |CISPEP|SITE {2}|CRYST1|ORIGX[123]|SCALE[123]|MTRIX[123]|MODEL |ATOM {2}|ANISOU|TER|HETATM|ENDMDL|CONECT|MASTER|END)/;

function isMolfile(lines: string[]): boolean {
  // Line 4 of a molfile is the counts line, ending in V2000 or V3000.
  const counts = lines[3];
  if (counts !== undefined && /V[23]000\s*$/.test(counts)) return true;
  // A broken counts line still comes after the molfile's program line: 2 characters of user
  // initials, 8 of program name, then the date and time (MMDDYYHHmm) and 2D or 3D.
  return /^.{2}.{8}\d{10}[23]D/.test(lines[1] ?? '');
}

function isXyz(lines: string[]): boolean {
  if (!/^\s*\d+\s*$/.test(lines[0] ?? '')) return false;
  // Line 2 is a free comment (extended XYZ puts Lattice= and Properties= there); the atoms follow.
  const declared = Number(lines[0]);
  const atomLines = lines.slice(2, 2 + Math.min(declared, 4)).filter((l) => l.trim() !== '');
  if (atomLines.length === 0) return declared === 0;
  return atomLines.every(
    (l) => /^\s*[A-Za-z]{1,3}\d*\s+[-+0-9.eE]+\s+[-+0-9.eE]+\s+[-+0-9.eE]+/.test(l) || /^\s*\d+\s+[-+0-9.eE]+\s+[-+0-9.eE]+\s+[-+0-9.eE]+/.test(l),
  );
}

function isMostlyBinary(head: Uint8Array): boolean {
  const sample = head.subarray(0, 4096);
  let suspicious = 0;
  for (const byte of sample) {
    if (byte === 0) return true;
    if (byte < 9 || (byte > 13 && byte < 32)) suspicious++;
  }
  return suspicious > sample.length * 0.05;
}

/** BinaryCIF is a MessagePack map with "encoder" and "dataBlocks" keys. */
function looksLikeBinaryCif(head: Uint8Array): boolean {
  const first = head[0];
  if (first === undefined || !((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) return false;
  const text = new TextDecoder('latin1').decode(head.subarray(0, 256));
  return text.includes('dataBlocks') || text.includes('encoder');
}

export function extensionHint(filename: string): Format | undefined {
  const lower = filename.toLowerCase().replace(/\.(gz|bz2)$/, '');
  const ext = lower.slice(lower.lastIndexOf('.') + 1);
  const map: Record<string, Format> = {
    pdb: 'pdb',
    ent: 'pdb',
    pdb1: 'pdb',
    cif: 'cif',
    mmcif: 'cif',
    bcif: 'bcif',
    sdf: 'sdf',
    sd: 'sdf',
    mol: 'mol',
    mol2: 'mol2',
    xyz: 'xyz',
    extxyz: 'xyz',
    cxs: 'cxs',
  };
  return map[ext];
}

/** Formats the same reader accepts interchangeably (a one-record SDF is a MOL file). */
export function formatsCompatible(declared: Format, detected: Format): boolean {
  if (declared === detected) return true;
  const molFamily = new Set<Format>(['sdf', 'mol']);
  return molFamily.has(declared) && molFamily.has(detected);
}
