/**
 * Record-level checks for the line-oriented small-molecule formats (SDF/MOL, MOL2, XYZ).
 *
 * Mol*'s readers trust the count lines: a record with fewer atom lines than its counts line
 * declares is read into garbage (bond lines as atoms, NaN coordinates), and one broken record
 * shifts every record after it. These checks walk the records the way the format defines them,
 * so a file is refused with the line that is wrong, and the readers only ever see records whose
 * counts agree with their contents. They do not build molecules: Mol* still does the reading.
 */
import type { Problem } from './types.js';

/** One record (molecule, frame) of a multi-record file, by line range (0-based, end exclusive). */
export interface RecordSpan {
  /** 1-based record number in the file. */
  index: number;
  startLine: number;
  endLine: number;
  /** What is wrong with this record; empty when it is sound. */
  problems: Problem[];
  title?: string;
  atoms?: number;
  bonds?: number;
}

export interface RecordScan {
  records: RecordSpan[];
  /** Problems that concern the file as a whole (no records at all, trailing junk). */
  fileProblems: Problem[];
  lines: string[];
}

const FLOAT = /^[-+]?(\d+\.?\d*|\.\d+)([eEdD][-+]?\d+)?$/;
const INT = /^[-+]?\d+$/;
const isNumber = (s: string | undefined): boolean => s !== undefined && FLOAT.test(s);
const isInt = (s: string | undefined): boolean => s !== undefined && INT.test(s);
const fields = (line: string): string[] =>
  line
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '');
/** Element symbols as molfiles and MOL2 write them, plus the query/pseudo-atom symbols they allow. */
const ATOM_SYMBOL = /^([A-Z][a-z]{0,2}|[a-z]{1,2}|\*|R#|LP|Lp|Du|\?)$/;

export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
  return lines;
}

const problem = (code: string, message: string, line?: number): Problem => (line !== undefined ? { code, message, line } : { code, message });

// ---------------------------------------------------------------------------------------- SDF/MOL

/**
 * V3000 lets a line continue on the next ("-" at the end, then "M  V30 "); Mol*'s reader and the
 * checks below read one entry per line, so continued lines are joined first.
 */
export function joinV3000Continuations(text: string): string {
  return text.includes('V3000') ? text.replace(/-\r?\nM {2}V30 /g, '') : text;
}

/** Splits an SDF at its `$$$$` lines and checks every record's counts line against its blocks. */
export function scanSdf(text: string): RecordScan {
  const lines = splitLines(joinV3000Continuations(text));
  const records: RecordSpan[] = [];
  let start = 0;
  const close = (end: number) => {
    let hasContent = false;
    for (let i = start; i < end; i++) {
      if (lines[i].trim() !== '') {
        hasContent = true;
        break;
      }
    }
    if (hasContent) records.push(checkMolRecord(lines, start, end, records.length + 1));
  };
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('$$$$')) {
      close(i);
      start = i + 1;
    }
  }
  close(lines.length);
  const fileProblems: Problem[] = [];
  if (records.length === 0) fileProblems.push(problem('no_records', 'The file holds no molecule records (it is blank).'));
  return { records, fileProblems, lines };
}

function checkMolRecord(lines: string[], start: number, end: number, index: number): RecordSpan {
  const problems: Problem[] = [];
  const record: RecordSpan = { index, startLine: start, endLine: end, problems, title: lines[start]?.trim() || undefined };
  const at = (offset: number) => start + offset;
  const lineNo = (i: number) => i + 1;
  const countsIndex = at(3);
  const counts = countsIndex < end ? lines[countsIndex] : undefined;
  if (counts === undefined) {
    problems.push(
      problem(
        'truncated_record',
        `Record ${index} ends before its counts line (a molfile header has 3 lines, then the counts line).`,
        lineNo(Math.min(countsIndex, end - 1)),
      ),
    );
    return record;
  }
  if (/V3000\s*$/.test(counts)) return checkV3000(lines, countsIndex + 1, end, record);
  const atomField = counts.slice(0, 3).trim();
  const bondField = counts.slice(3, 6).trim();
  if (!isInt(atomField) || !isInt(bondField)) {
    const what =
      /^[\d ]*$/.test(counts) && counts.length < 6
        ? 'is too short to hold the atom and bond counts'
        : 'does not start with the atom and bond counts as numbers';
    problems.push(problem('bad_counts_line', `Record ${index}: the counts line ${what} ("${counts.trim()}").`, lineNo(countsIndex)));
    return record;
  }
  const atomCount = Number(atomField);
  const bondCount = Number(bondField);
  record.atoms = atomCount;
  record.bonds = bondCount;
  let i = countsIndex + 1;
  for (let a = 1; a <= atomCount; a++, i++) {
    const line = i < end ? lines[i] : undefined;
    const f = line === undefined ? [] : fields(line);
    const declared = `the counts line declares ${atomCount} atoms`;
    if (line === undefined || f[0] === 'M' || line.startsWith('M  ')) {
      problems.push(problem('count_mismatch', `Record ${index}: ${declared}, but the atom block has only ${a - 1}.`, lineNo(Math.min(i, end - 1))));
      return record;
    }
    if (f.length < 4 || !isNumber(f[0]) || !isNumber(f[1]) || !isNumber(f[2])) {
      const reason = f.length < 4 ? 'lacks a coordinate or the element' : 'has coordinates that are not numbers';
      problems.push(problem('bad_atom_line', `Record ${index}: atom ${a} ${reason} ("${line.trim()}"); ${declared}.`, lineNo(i)));
      return record;
    }
    if (!ATOM_SYMBOL.test(f[3])) {
      problems.push(
        problem(
          'bad_atom_line',
          `Record ${index}: atom ${a} has "${f[3]}" where the element belongs; ${declared}, so the atom block is probably shorter than that.`,
          lineNo(i),
        ),
      );
      return record;
    }
  }
  for (let b = 1; b <= bondCount; b++, i++) {
    const line = i < end ? lines[i] : undefined;
    const first = line === undefined ? '' : line.slice(0, 3).trim();
    const second = line === undefined ? '' : line.slice(3, 6).trim();
    if (line === undefined || !isInt(first) || !isInt(second)) {
      problems.push(
        problem(
          'count_mismatch',
          `Record ${index}: the counts line declares ${bondCount} bonds, but the bond block has only ${b - 1}.`,
          lineNo(Math.min(i, end - 1)),
        ),
      );
      return record;
    }
    const from = Number(first);
    const to = Number(second);
    if (from < 1 || from > atomCount || to < 1 || to > atomCount) {
      problems.push(problem('bad_bond', `Record ${index}: bond ${b} joins atoms ${from} and ${to}, but the record has ${atomCount} atoms.`, lineNo(i)));
      return record;
    }
  }
  // Properties block up to "M  END"; then data items up to the end of the record.
  for (; i < end; i++) {
    const line = lines[i];
    if (line.startsWith('M  END')) {
      i++;
      break;
    }
    if (line.startsWith('>')) break;
    if (/^(A {2}|G {2})/.test(line)) {
      i++; // an atom alias or group abbreviation: its text is on the next line
      continue;
    }
    if (line.trim() !== '' && !/^(M {2}|V {2}|S {2}SKP)/.test(line)) {
      problems.push(problem('bad_property_line', `Record ${index}: "${line.trim()}" is neither a property line ("M  ...") nor the "M  END" line.`, lineNo(i)));
      return record;
    }
  }
  // Old molfiles (before properties blocks) may go straight to the data items without "M  END".
  for (; i < end; i++) {
    const line = lines[i];
    if (line.startsWith('>') && !/^>.*<[^>]*>/.test(line)) {
      problems.push(problem('bad_data_header', `Record ${index}: the data item header "${line.trim()}" lacks its "<name>" field.`, lineNo(i)));
      return record;
    }
  }
  return record;
}

function v3000Fields(line: string): string[] {
  return fields(line.slice(6));
}

function checkV3000(lines: string[], from: number, end: number, record: RecordSpan): RecordSpan {
  const { problems, index } = record;
  const lineNo = (i: number) => i + 1;
  let i = from;
  const expect = (text: string): boolean => {
    while (i < end && lines[i].trim() === '') i++;
    if (i < end && lines[i].startsWith('M  V30') && v3000Fields(lines[i]).join(' ').toUpperCase() === text) {
      i++;
      return true;
    }
    problems.push(problem('bad_v3000_block', `Record ${index}: expected "M  V30 ${text}" here.`, lineNo(Math.min(i, end - 1))));
    return false;
  };
  if (!expect('BEGIN CTAB')) return record;
  const counts = i < end ? v3000Fields(lines[i]) : [];
  if (counts[0]?.toUpperCase() !== 'COUNTS' || !isInt(counts[1]) || !isInt(counts[2])) {
    problems.push(problem('bad_counts_line', `Record ${index}: expected "M  V30 COUNTS <atoms> <bonds> ..." here.`, lineNo(Math.min(i, end - 1))));
    return record;
  }
  const atomCount = Number(counts[1]);
  const bondCount = Number(counts[2]);
  record.atoms = atomCount;
  record.bonds = bondCount;
  i++;
  const block = (name: 'ATOM' | 'BOND', declared: number, check: (f: string[], n: number, line: number) => boolean): boolean => {
    if (declared === 0 && !(i < end && /^M {2}V30 BEGIN /.test(lines[i]) && lines[i].includes(name))) return true;
    if (!expect(`BEGIN ${name}`)) return false;
    let n = 0;
    for (; i < end && !/^M {2}V30 END /.test(lines[i]); i++) {
      if (lines[i].trimEnd().endsWith('-')) {
        problems.push(
          problem(
            'unsupported_v3000',
            `Record ${index}: the ${name} block uses continuation lines ("-" at the end), which molvault's reader does not follow.`,
            lineNo(i),
          ),
        );
        return false;
      }
      n++;
      if (!check(v3000Fields(lines[i]), n, i)) return false;
    }
    if (n !== declared) {
      problems.push(
        problem(
          'count_mismatch',
          `Record ${index}: the COUNTS line declares ${declared} ${name === 'ATOM' ? 'atoms' : 'bonds'}, but the ${name} block has ${n}.`,
          lineNo(Math.min(i, end - 1)),
        ),
      );
      return false;
    }
    return expect(`END ${name}`);
  };
  const atomsOk = block('ATOM', atomCount, (f, n, line) => {
    if (f.length < 5 || !isNumber(f[2]) || !isNumber(f[3]) || !isNumber(f[4])) {
      problems.push(problem('bad_atom_line', `Record ${index}: atom ${n} lacks its type or x, y, z coordinates.`, lineNo(line)));
      return false;
    }
    return true;
  });
  if (!atomsOk) return record;
  block('BOND', bondCount, (f, n, line) => {
    if (f.length < 4 || !isInt(f[2]) || !isInt(f[3])) {
      problems.push(problem('bad_bond', `Record ${index}: bond ${n} does not name two atoms.`, lineNo(line)));
      return false;
    }
    return true;
  });
  return record;
}

// ------------------------------------------------------------------------------------------ MOL2

/** Splits a MOL2 file at its `@<TRIPOS>MOLECULE` records and checks each against its counts line. */
export function scanMol2(text: string): RecordScan {
  const lines = splitLines(text);
  const starts: number[] = [];
  for (let i = 0; i < lines.length; i++) if (lines[i].startsWith('@<TRIPOS>MOLECULE')) starts.push(i);
  const fileProblems: Problem[] = [];
  if (starts.length === 0) {
    fileProblems.push(problem('no_molecule_record', 'The MOL2 file has no @<TRIPOS>MOLECULE record, so it describes no molecule.'));
  }
  const records = starts.map((start, k) => checkMol2Record(lines, start, starts[k + 1] ?? lines.length, k + 1));
  return { records, fileProblems, lines };
}

function checkMol2Record(lines: string[], start: number, end: number, index: number): RecordSpan {
  const problems: Problem[] = [];
  const record: RecordSpan = { index, startLine: start, endLine: end, problems, title: lines[start + 1]?.trim() || undefined };
  const lineNo = (i: number) => i + 1;
  const countsLine = start + 2 < end ? lines[start + 2] : undefined;
  const counts = countsLine === undefined ? [] : fields(countsLine);
  if (!isInt(counts[0])) {
    problems.push(
      problem('bad_counts_line', `Molecule ${index}: the line after the molecule name should start with the atom count.`, lineNo(Math.min(start + 2, end - 1))),
    );
    return record;
  }
  const atomCount = Number(counts[0]);
  const bondCount = isInt(counts[1]) ? Number(counts[1]) : undefined;
  record.atoms = atomCount;
  record.bonds = bondCount;
  if (atomCount === 0) {
    problems.push(problem('no_atoms', `Molecule ${index} ("${record.title ?? ''}") declares no atoms.`, lineNo(start + 2)));
    return record;
  }
  const section = (name: string): { first: number; rows: number[] } | undefined => {
    for (let i = start; i < end; i++) {
      if (lines[i].startsWith(`@<TRIPOS>${name}`)) {
        const rows: number[] = [];
        for (let j = i + 1; j < end && !lines[j].startsWith('@<TRIPOS>'); j++) {
          const t = lines[j].trim();
          if (t !== '' && !t.startsWith('#')) rows.push(j);
        }
        return { first: i, rows };
      }
    }
    return undefined;
  };
  const atoms = section('ATOM');
  if (!atoms) {
    problems.push(problem('count_mismatch', `Molecule ${index} declares ${atomCount} atoms but has no @<TRIPOS>ATOM section.`, lineNo(start + 2)));
    return record;
  }
  for (const [n, row] of atoms.rows.entries()) {
    const f = fields(lines[row]);
    if (f.length < 6 || !isInt(f[0]) || !isNumber(f[2]) || !isNumber(f[3]) || !isNumber(f[4])) {
      const reason = f.length < 6 ? 'has too few fields (id, name, x, y, z and type are required)' : 'has an id or coordinates that are not numbers';
      problems.push(problem('bad_atom_line', `Molecule ${index}: atom record ${n + 1} ${reason} ("${lines[row].trim()}").`, lineNo(row)));
      return record;
    }
  }
  if (atoms.rows.length !== atomCount) {
    problems.push(
      problem(
        'count_mismatch',
        `Molecule ${index}: the counts line declares ${atomCount} atoms, but the ATOM section has ${atoms.rows.length}.`,
        lineNo(atoms.first),
      ),
    );
    return record;
  }
  const bonds = section('BOND');
  const bondRows = bonds?.rows.length ?? 0;
  for (const [n, row] of (bonds?.rows ?? []).entries()) {
    const f = fields(lines[row]);
    if (f.length < 4 || !isInt(f[1]) || !isInt(f[2])) {
      problems.push(
        problem('bad_bond', `Molecule ${index}: bond record ${n + 1} does not name two atoms and a bond type ("${lines[row].trim()}").`, lineNo(row)),
      );
      return record;
    }
  }
  if (bondCount !== undefined && bondRows !== bondCount) {
    problems.push(
      problem(
        'count_mismatch',
        `Molecule ${index}: the counts line declares ${bondCount} bonds, but the BOND section has ${bondRows}.`,
        lineNo(bonds?.first ?? start + 2),
      ),
    );
  }
  record.bonds = bondRows;
  return record;
}

// ------------------------------------------------------------------------------------------- XYZ

const EXTXYZ_TYPES = new Set(['S', 'R', 'I', 'L']);

/** Walks the frames of a (possibly extended) XYZ file: count line, comment line, that many atom lines. */
export function scanXyz(text: string): RecordScan {
  const lines = splitLines(text);
  const records: RecordSpan[] = [];
  const fileProblems: Problem[] = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i].trim() === '') {
      i++;
      continue;
    }
    const index = records.length + 1;
    const start = i;
    const countText = lines[i].trim();
    if (!isInt(countText) || Number(countText) < 0) {
      fileProblems.push(
        problem(
          'bad_count_line',
          index === 1
            ? `The first line of an XYZ file must be the number of atoms, not "${countText.slice(0, 40)}".`
            : `Frame ${index} should start with its number of atoms, not "${countText.slice(0, 40)}" (the frame before may have more atom lines than it declares).`,
          i + 1,
        ),
      );
      break;
    }
    const count = Number(countText);
    const problems: Problem[] = [];
    const record: RecordSpan = { index, startLine: start, endLine: start, problems, atoms: count, title: lines[i + 1]?.trim() || undefined };
    records.push(record);
    const comment = lines[i + 1] ?? '';
    const columns = extendedColumns(comment, index, i + 2, problems);
    i += 2;
    if (problems.length > 0) break;
    for (let a = 1; a <= count; a++, i++) {
      const line = lines[i];
      if (line === undefined || (line.trim() === '' && i >= lines.length - 1)) {
        problems.push(
          problem('count_mismatch', `Frame ${index} declares ${count} atoms, but the file ends after ${a - 1}.`, Math.min(i, lines.length - 1) + 1),
        );
        break;
      }
      const f = fields(line);
      if (f.length < 4 || !ATOM_SYMBOL_OR_NUMBER.test(f[0]) || !isNumber(f[1]) || !isNumber(f[2]) || !isNumber(f[3])) {
        const declared = `frame ${index} declares ${count} atoms`;
        problems.push(problem('bad_atom_line', `Atom ${a} of frame ${index} is not "element x y z" ("${line.trim().slice(0, 60)}"); ${declared}.`, i + 1));
        break;
      }
      if (columns) {
        const message = checkExtendedValues(line.trim().match(/"[^"]*"|\S+/g) ?? [], columns);
        if (message) {
          problems.push(problem('bad_extended_xyz', `Atom ${a} of frame ${index}: ${message}.`, i + 1));
          break;
        }
      }
    }
    record.endLine = i;
    if (problems.length > 0) break;
  }
  if (records.length === 0 && fileProblems.length === 0) fileProblems.push(problem('no_records', 'The file holds no XYZ frame (it is blank).'));
  return { records, fileProblems, lines };
}

// "*" is the placeholder Open Babel and others write for an atom whose element they could not tell; the summary warns about it.
const ATOM_SYMBOL_OR_NUMBER = /^([A-Za-z][A-Za-z]{0,2}\d*|\d{1,3}|\*)$/;

type ExtColumn = { name: string; type: string; count: number };

/** Reads `Properties=name:type:count:...` from an extended XYZ comment line; undefined for plain XYZ. */
function extendedColumns(comment: string, frame: number, line: number, problems: Problem[]): ExtColumn[] | undefined {
  const match = /(?:^|\s)Properties=("([^"]*)"|(\S*))/i.exec(comment);
  if (!match) return undefined;
  const spec = (match[2] ?? match[3] ?? '').split(':');
  const fail = (why: string) => {
    problems.push(problem('bad_extended_xyz', `Frame ${frame}: the extended XYZ Properties= specification is invalid: ${why}.`, line));
    return undefined;
  };
  if (spec.length % 3 !== 0) return fail('it must be name:type:count triples');
  const columns: ExtColumn[] = [];
  for (let k = 0; k < spec.length; k += 3) {
    const [name, type, count] = [spec[k], spec[k + 1], spec[k + 2]];
    if (!name) return fail(`column ${k / 3 + 1} has no name`);
    if (!EXTXYZ_TYPES.has(type?.toUpperCase())) return fail(`"${name}" has type "${type}", not one of S, R, I, L`);
    if (!isInt(count) || Number(count) < 1) return fail(`"${name}" has repeat count "${count}", not a positive integer`);
    columns.push({ name, type: type.toUpperCase(), count: Number(count) });
  }
  const species = columns[0];
  const pos = columns[1];
  if (species?.name.toLowerCase() !== 'species' || pos?.name.toLowerCase() !== 'pos' || pos.type !== 'R' || pos.count !== 3) {
    return fail('the first columns must be species:S:1 and pos:R:3');
  }
  return columns;
}

function checkExtendedValues(values: string[], columns: ExtColumn[]): string | undefined {
  const expected = columns.reduce((n, c) => n + c.count, 0);
  if (values.length < expected) return `Properties= declares ${expected} values per atom, the line has ${values.length}`;
  let k = 0;
  for (const column of columns) {
    for (let c = 0; c < column.count; c++, k++) {
      const value = values[k];
      const ok = column.type === 'R' ? isNumber(value) : column.type === 'I' ? isInt(value) : column.type === 'L' ? /^(t|f|true|false)$/i.test(value) : true;
      if (!ok) return `"${value}" is not a valid ${{ R: 'real', I: 'integer', L: 'logical' }[column.type as 'R' | 'I' | 'L']} value for "${column.name}"`;
    }
  }
  return undefined;
}

/** The text of some records only (the readers get sound records, never the broken ones). */
export function recordText(scan: RecordScan, record: RecordSpan, terminator = ''): string {
  return scan.lines.slice(record.startLine, record.endLine).join('\n') + terminator;
}
