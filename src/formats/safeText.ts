/**
 * Text read from a file is made safe before anything stores it. Postgres refuses a NUL in text
 * (and so in jsonb), and other control characters in a title or a name break whatever shows or
 * compares it. Every parse outcome (every format, the PDB byte reader and Mol*'s readers alike)
 * passes through `safeOutcome` on its way out of `formats/parse.ts`; nothing else in molvault
 * needs to know these rules. The rules, per field (docs/API.md, "Text and coordinates"):
 *
 * - A NUL byte anywhere in a text format (PDB, mmCIF, SDF/MOL, MOL2, XYZ) refuses the file with
 *   the line of the first one: no text format allows it, and it marks a damaged or binary file.
 * - Free text (title, method, ligand descriptions, and any text field the summary gains): other
 *   control characters (U+0001–U+001F but tab, line feed and carriage return, and U+007F; U+0000
 *   too in BinaryCIF) are removed, and the report warns (`control_characters_removed`).
 * - Identifiers the summary keeps (ligand residue names, PDB id, deposition date): a control
 *   character refuses the file with the line holding the value, since a name that is not what the
 *   file says matches nothing.
 * - Messages of the report, which quote the file: control characters are shown escaped (`\x01`).
 * - Coordinates: not finite → refused (summarize.ts); beyond ±COORDINATE_LIMIT_ANGSTROM → refused,
 *   with the line of the first such number; beyond 100,000 Å, a warning (summarize.ts).
 */
import { FORMAT_LABELS, type Format, type ParseOutcome, type Problem } from './types.js';

/** C0 controls but tab, LF and CR, plus DEL; C1 is left alone (latin1-read UTF-8 text holds those bytes). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this module's purpose
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const CONTROL_ALL = new RegExp(CONTROL.source, 'g');

/** No molecule or assembly spans a tenth of a millimetre: a coordinate past this is a broken number. */
export const COORDINATE_LIMIT_ANGSTROM = 1e6;

/** Formats that are text; BinaryCIF and sessions are binary and may hold NUL bytes. */
const TEXT_FORMATS: ReadonlySet<Format> = new Set(['pdb', 'cif', 'sdf', 'mol', 'mol2', 'xyz']);

/** Summary fields that name things: a control character in them refuses the file. */
const IDENTIFIER_FIELDS = new Set(['pdbId', 'depositionDate', 'ligands.name']);

export const hasControlCharacters = (text: string): boolean => CONTROL.test(text);

/** The text without control characters (tab, LF and CR stay). */
export function withoutControlCharacters(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROL_ALL, '') : text;
}

/** The text with each control character written out as `\xNN`, for messages that quote a file. */
export function escapeControlCharacters(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROL_ALL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : text;
}

/** 1-based line of a byte offset. */
function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 10) line++;
  return line;
}

function asBytes(source: Uint8Array | string): Uint8Array {
  return typeof source === 'string' ? Buffer.from(source, 'latin1') : source;
}

const refused = (format: Format, problem: Problem, parser: string, parseMs = 0): ParseOutcome => ({
  ok: false,
  format,
  status: 422,
  code: 'invalid_structure',
  message: problem.message,
  report: { problems: [problem], warnings: [], parser, parseMs },
});

/**
 * The refusal of a text-format file that holds a NUL byte, with the line of the first; undefined
 * when it holds none (or the format is binary). Cheap: one memchr over the bytes.
 */
export function nulByteRefusal(source: Uint8Array | string, format: Format, parser: string): ParseOutcome | undefined {
  if (!TEXT_FORMATS.has(format)) return undefined;
  const bytes = asBytes(source);
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(0);
  if (at < 0) return undefined;
  const line = lineAt(bytes, at);
  return refused(
    format,
    {
      code: 'nul_byte',
      message: `Line ${line} holds a NUL byte (0x00), which no ${FORMAT_LABELS[format]} file contains: the file is damaged or not text.`,
      line,
    },
    parser,
  );
}

const isDigit = (c: number) => c >= 48 && c <= 57;
/** Bytes a coordinate field may hold: digits, sign, point, exponent and blanks. */
const isNumberByte = (c: number) => isDigit(c) || c === 32 || c === 46 || c === 45 || c === 43 || c === 101 || c === 69;
const NUMBER_TOKEN = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Whether a coordinate as written is a number (Mol*'s fast readers take "nan", "inf" or "abc" as 0). */
export const isNumberToken = (token: string): boolean => NUMBER_TOKEN.test(token);

/** Whether the line at `start` (6 bytes or more) is an ATOM or HETATM record; compared by bytes, no string per line. */
const isAtomRecord = (b: Uint8Array, s: number): boolean =>
  b[s] === 65
    ? b[s + 1] === 84 && b[s + 2] === 79 && b[s + 3] === 77 && b[s + 4] === 32 && b[s + 5] === 32
    : b[s] === 72 && b[s + 1] === 69 && b[s + 2] === 84 && b[s + 3] === 65 && b[s + 4] === 84 && b[s + 5] === 77;

/**
 * The refusal of a PDB file whose ATOM/HETATM record has coordinates (columns 31-54) that are not
 * numbers (NaN, inf, letters, blanks) or stops before them, with the line; Mol*'s reader would
 * read such a field as 0 and put the atom at the origin.
 */
function pdbCoordinateRefusal(bytes: Uint8Array, parser: string): ParseOutcome | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let line = 0;
  for (let start = 0; start < buffer.length; ) {
    line++;
    let end = buffer.indexOf(10, start);
    if (end < 0) end = buffer.length;
    const c = buffer[start];
    if ((c === 65 || c === 72) && end - start >= 6) {
      if (isAtomRecord(buffer, start)) {
        let lineEnd = end;
        if (lineEnd > start && buffer[lineEnd - 1] === 13) lineEnd--;
        let bad = lineEnd - start < 54;
        for (let field = 0; !bad && field < 3; field++) {
          let digits = 0;
          for (let i = start + 30 + field * 8; i < start + 38 + field * 8; i++) {
            if (!isNumberByte(buffer[i])) bad = true;
            else if (isDigit(buffer[i])) digits++;
          }
          if (digits === 0) bad = true;
        }
        if (bad) {
          const shown = escapeControlCharacters(buffer.toString('latin1', start + 30, Math.min(lineEnd, start + 54)).trim());
          return refused(
            'pdb',
            {
              code: 'coordinates_not_numbers',
              message:
                lineEnd - start < 54
                  ? `Line ${line} is an atom record that ends before its coordinates (columns 31-54).`
                  : `Line ${line} gives coordinates that are not numbers ("${shown}" in columns 31-54).`,
              line,
            },
            parser,
          );
        }
      }
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * What refuses a file before it is read: a NUL byte in a text format; in PDB, coordinates that are
 * not numbers. Undefined when neither.
 */
export function refusedBeforeReading(source: Uint8Array | string, format: Format, parser: string): ParseOutcome | undefined {
  const bytes = asBytes(source);
  return nulByteRefusal(bytes, format, parser) ?? (format === 'pdb' ? pdbCoordinateRefusal(bytes, parser) : undefined);
}

/** The first line of the file that holds `value` (as the file spells it), if it is a text file. */
function lineOf(bytes: Uint8Array, value: string): number | undefined {
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(value, 'latin1'));
  return at < 0 ? undefined : lineAt(bytes, at);
}

const NUMBER = /[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?/g;

/** The first line holding a decimal number beyond the coordinate limit (integers are ids, not coordinates). */
function lineOfHugeNumber(bytes: Uint8Array): number | undefined {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let line = 1;
  for (let start = 0; start < text.length; line++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    for (const match of text.slice(start, end).matchAll(NUMBER)) {
      const token = match[0];
      if (/[.eE]/.test(token) && Math.abs(Number(token)) > COORDINATE_LIMIT_ANGSTROM) return line;
    }
    start = end + 1;
  }
  return undefined;
}

interface Walk {
  removedFrom: Set<string>;
  badIdentifier?: { field: string; value: string };
}

/** Copies a summary value with control characters removed from its text, noting where. */
function cleanValue(value: unknown, path: string, walk: Walk): unknown {
  if (typeof value === 'string') {
    if (!CONTROL.test(value)) return value;
    if (IDENTIFIER_FIELDS.has(path)) walk.badIdentifier ??= { field: path, value };
    walk.removedFrom.add(path);
    return withoutControlCharacters(value);
  }
  if (Array.isArray(value)) return value.map((item) => cleanValue(item, path, walk));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const name = withoutControlCharacters(key);
      if (name !== key) walk.removedFrom.add(path || 'elements');
      out[name] = cleanValue(item, path ? `${path}.${key}` : key, walk);
    }
    return out;
  }
  return value;
}

/**
 * Whether cleanValue would give back a copy equal to `value`: no control character in its text or
 * keys, and nothing but strings, numbers, booleans, arrays and plain objects in it. The summary
 * is then kept as it is; copying it cost a small file as much as reading its header.
 */
function alreadyClean(value: unknown): boolean {
  if (typeof value === 'string') return !CONTROL.test(value);
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let k = 0; k < value.length; k++) if (!(k in value) || !alreadyClean(value[k])) return false;
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key of Object.keys(value)) {
    if (CONTROL.test(key) || !alreadyClean((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

const FIELD_NAMES: Record<string, string> = {
  title: 'the title',
  method: 'the method',
  'ligands.description': 'ligand descriptions',
  'ligands.name': 'ligand names',
  pdbId: 'the PDB id',
  depositionDate: 'the deposition date',
};

const safeProblem = (p: Problem): Problem => {
  const message = escapeControlCharacters(p.message);
  const code = withoutControlCharacters(p.code);
  return message === p.message && code === p.code ? p : { ...p, code, message };
};

/**
 * The outcome as molvault may store it (the rules at the top of this file). `source` is what was
 * parsed, to find lines in; the same outcome comes back when nothing needed changing.
 */
export function safeOutcome(outcome: ParseOutcome, source: Uint8Array | string): ParseOutcome {
  const report = {
    ...outcome.report,
    problems: outcome.report.problems.map(safeProblem),
    warnings: outcome.report.warnings.map(safeProblem),
  };
  if (!outcome.ok) return { ...outcome, message: escapeControlCharacters(outcome.message), report };
  const bytes = asBytes(source);
  const textFile = TEXT_FORMATS.has(outcome.format);
  const walk: Walk = { removedFrom: new Set() };
  const summary = alreadyClean(outcome.summary) ? outcome.summary : (cleanValue(outcome.summary, '', walk) as typeof outcome.summary);
  const refuse = (problem: Problem): ParseOutcome => ({
    ok: false,
    format: outcome.format,
    status: 422,
    code: 'invalid_structure',
    message: problem.message,
    report: { ...report, problems: [...report.problems, problem] },
  });
  if (walk.badIdentifier) {
    const { field, value } = walk.badIdentifier;
    const line = textFile ? lineOf(bytes, value) : undefined;
    const where = line !== undefined ? `Line ${line}` : `The ${FORMAT_LABELS[outcome.format]} data`;
    return refuse({
      code: 'control_characters',
      message: `${where} gives ${FIELD_NAMES[field] ?? field} as "${escapeControlCharacters(value)}", with a control character no name may hold.`,
      ...(line !== undefined ? { line } : {}),
    });
  }
  const bounds = summary.bounds;
  const farthest = bounds ? Math.max(...bounds.min.map(Math.abs), ...bounds.max.map(Math.abs)) : 0;
  if (farthest > COORDINATE_LIMIT_ANGSTROM) {
    const line = textFile ? lineOfHugeNumber(bytes) : undefined;
    return refuse({
      code: 'coordinates_out_of_range',
      message: `${line !== undefined ? `Line ${line} places an atom` : 'An atom lies'} ${farthest.toExponential(2)} Å from the origin, past the ${COORDINATE_LIMIT_ANGSTROM.toExponential(0)} Å molvault accepts: the coordinate is broken.`,
      ...(line !== undefined ? { line } : {}),
    });
  }
  if (walk.removedFrom.size > 0) {
    const fields = [...walk.removedFrom].map((f) => FIELD_NAMES[f] ?? f);
    report.warnings.push({
      code: 'control_characters_removed',
      message: `Control characters were removed from ${fields.join(', ')}: molvault keeps text without them.`,
    });
  }
  return { ...outcome, summary, report };
}
