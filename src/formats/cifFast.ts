/**
 * An mmCIF read straight from its bytes into the atom table the summary needs, giving what the
 * token path (Mol*'s CIF tokenizer, then summarizeCif.ts) gives, without decoding the file into one
 * string and without keeping a token index for every value of every category.
 *
 * The tokenizer is Mol*'s (mol-io/reader/cif/text/parser.js) rewritten over bytes, rule for rule:
 * quotes that end only before whitespace, `;` text fields at the start of a line, `data_`, `loop_`,
 * `save_` recognised case-insensitively by their fifth character, '.' and '?' read as absent and
 * unknown whether quoted or not. The whole file is tokenized, so a syntax error anywhere counts.
 * `_atom_site` is summarised row by row as its values arrive; of the other categories only the
 * few values the summary reads are kept (entities, component names, title, method, id, date,
 * resolution).
 *
 * It declines (returns undefined, and the reference path reads the file) whenever the reference
 * would do anything it does not reproduce: a syntax error, save frames, a category of interest
 * given twice or with fields spelt in another case, a loop of undotted names, a first data block
 * without `_atom_site`, an atom without coordinates or with a coordinate that is not a number, an
 * atom naming an entity `_entity` does not describe, any reason summarizeCif.ts declines for.
 * formats.cifFast.test.ts compares both paths on every corpus mmCIF and on mmCIF written by gemmi.
 */

import { runAt } from '../lib/sortedSearch.js';
import { isNumberToken } from './safeText.js';
import type { AtomTable } from './summarize.js';
import type { StructureSummary } from './types.js';

enum Token {
  Data = 0,
  Save = 1,
  Loop = 2,
  Value = 3,
  ColumnName = 4,
  Comment = 5,
  End = 6,
}

/** Why a file is left to the reference path (for tests and profiles; not shown to users). */
export let lastCifDecline = '';

class Decline extends Error {}
function decline(reason: string): never {
  lastCifDecline = reason;
  throw new Decline(reason);
}

class Tokenizer {
  position = 0;
  tokenStart = 0;
  tokenEnd = 0;
  tokenType: Token = Token.End;
  isEscaped = false;
  readonly length: number;
  constructor(readonly data: Uint8Array) {
    this.length = data.length;
  }

  /** Mol*'s skipWhitespace: the last whitespace character skipped (LF at the start). */
  private skipWhitespace(): number {
    const data = this.data;
    let prev = 10;
    let p = this.position;
    const n = this.length;
    while (p < n) {
      const c = data[p];
      if (c === 32 || c === 9 || c === 10 || c === 13) {
        prev = c;
        p++;
      } else break;
    }
    this.position = p;
    return prev;
  }

  private eatValue(): void {
    const data = this.data;
    let p = this.position;
    const n = this.length;
    while (p < n) {
      const c = data[p];
      if (c === 32 || c === 10 || c === 13 || c === 9) break;
      p++;
    }
    this.position = p;
    this.tokenEnd = p;
  }

  private eatEscaped(esc: number): void {
    const data = this.data;
    const n = this.length;
    let p = this.position + 1;
    while (p < n) {
      const c = data[p];
      if (c === esc) {
        const next = p + 1 < n ? data[p + 1] : -1;
        if (next === 9 || next === 10 || next === 13 || next === 32 || next === -1) {
          this.tokenStart++;
          this.tokenEnd = p;
          this.isEscaped = true;
          this.position = p + 1;
          return;
        }
        p++;
      } else {
        if (c === 10 || c === 13) {
          this.position = p;
          this.tokenEnd = p;
          return;
        }
        p++;
      }
    }
    this.position = p;
    this.tokenEnd = p;
  }

  private isTripleQuote(): boolean {
    const p = this.position;
    if (this.length - p < 2) return false;
    return this.data[p + 1] === 39 && this.data[p + 2] === 39;
  }

  private eatTripleQuote(): void {
    const data = this.data;
    const n = this.length;
    this.position += 3;
    while (this.position < n) {
      if (data[this.position] === 39 && this.isTripleQuote()) {
        this.tokenStart += 3;
        this.tokenEnd = this.position;
        this.isEscaped = true;
        this.position += 3;
        return;
      }
      this.position++;
    }
    this.tokenEnd = this.position;
  }

  private eatMultiline(): void {
    const data = this.data;
    const n = this.length;
    let prev = 59;
    let pos = this.position + 1;
    while (pos < n) {
      const c = data[pos];
      if (c === 59 && (prev === 10 || prev === 13)) {
        this.position = pos + 1;
        this.tokenStart++;
        pos--;
        let d = data[pos];
        while (d === 10 || d === 13) {
          pos--;
          d = data[pos];
        }
        this.tokenEnd = pos + 1;
        this.isEscaped = true;
        return;
      }
      prev = c;
      pos++;
    }
    // An unterminated text field: Mol* leaves its end where it was (the field's first character).
    this.position = pos;
  }

  private skipCommentLine(): void {
    const data = this.data;
    const n = this.length;
    let p = this.position;
    while (p < n) {
      const c = data[p];
      if (c === 10 || c === 13) break;
      p++;
    }
    this.position = p;
  }

  private keyword(a: number, b: number, c: number, d: number): boolean {
    const data = this.data;
    const s = this.tokenStart;
    // ASCII letters: the lower-case bit set matches either case.
    return (data[s] | 32) === a && (data[s + 1] | 32) === b && (data[s + 2] | 32) === c && (data[s + 3] | 32) === d;
  }

  private moveNextInternal(): void {
    const prev = this.skipWhitespace();
    if (this.position >= this.length) {
      this.tokenType = Token.End;
      return;
    }
    this.tokenStart = this.position;
    this.tokenEnd = this.position;
    this.isEscaped = false;
    const c = this.data[this.position];
    if (c === 35) {
      this.skipCommentLine();
      this.tokenType = Token.Comment;
      return;
    }
    if (c === 39 && this.isTripleQuote()) {
      this.eatTripleQuote();
      this.tokenType = Token.Value;
      return;
    }
    if (c === 39 || c === 34) {
      this.eatEscaped(c);
      this.tokenType = Token.Value;
      return;
    }
    if (c === 59) {
      if (prev === 10 || prev === 13) this.eatMultiline();
      else this.eatValue();
      this.tokenType = Token.Value;
      return;
    }
    this.eatValue();
    if (c === 95) {
      this.tokenType = Token.ColumnName;
    } else if (this.tokenEnd - this.tokenStart >= 5 && this.data[this.tokenStart + 4] === 95) {
      // 'd','a','t','a' | 's','a','v','e' | 'l','o','o','p' (lower case codes)
      if (this.keyword(100, 97, 116, 97)) this.tokenType = Token.Data;
      else if (this.keyword(115, 97, 118, 101)) this.tokenType = Token.Save;
      else if (this.tokenEnd - this.tokenStart === 5 && this.keyword(108, 111, 111, 112)) this.tokenType = Token.Loop;
      else this.tokenType = Token.Value;
    } else {
      this.tokenType = Token.Value;
    }
  }

  moveNext(): void {
    this.moveNextInternal();
    while (this.tokenType === Token.Comment) this.moveNextInternal();
  }

  /** Index of the first '.' of the current token, or its end. */
  namespaceEnd(): number {
    const data = this.data;
    for (let i = this.tokenStart; i < this.tokenEnd; i++) if (data[i] === 46) return i;
    return this.tokenEnd;
  }

  /** Mol*'s isNamespace: the current token starts with the bytes [start, end) followed by '.' or its end. */
  isNamespace(start: number, end: number): boolean {
    const data = this.data;
    const nsLen = end - start;
    const tokenLen = this.tokenEnd - this.tokenStart;
    if (tokenLen < nsLen) return false;
    const offset = this.tokenStart - start;
    for (let i = start; i < end; i++) if (data[i] !== data[i + offset]) return false;
    if (nsLen === tokenLen) return true;
    return data[end + offset] === 46;
  }
}

const latin1 = (data: Uint8Array, start: number, end: number): string => Buffer.from(data.buffer, data.byteOffset + start, end - start).toString('latin1');

/** Mol*'s CifField.str: the token, or '' when it is exactly '.' or '?'. */
function str(data: Uint8Array, start: number, end: number): string {
  if (end - start === 1) {
    const c = data[start];
    if (c === 46 || c === 63) return '';
    return String.fromCharCode(c);
  }
  return end === start ? '' : latin1(data, start, end);
}

/** Mol*'s CifField.valueKind === Present. */
function present(data: Uint8Array, start: number, end: number): boolean {
  const l = end - start;
  if (l > 1) return true;
  if (l === 0) return false;
  const c = data[start];
  return c !== 46 && c !== 63;
}

function equalSpans(data: Uint8Array, aS: number, aE: number, bS: number, bE: number): boolean {
  const len = aE - aS;
  if (len !== bE - bS) return false;
  for (let i = 0; i < len; i++) if (data[aS + i] !== data[bS + i]) return false;
  return true;
}

/** Mol*'s fastParseInt over bytes, then `|| 0` as CifField.int. */
function cifInt(data: Uint8Array, start: number, end: number): number {
  let p = start;
  let ret = 0;
  let neg = 1;
  if (data[p] === 45) {
    neg = -1;
    p++;
  } else if (data[p] === 43) p++;
  for (; p < end; p++) {
    const c = data[p] - 48;
    if (c > 9 || c < 0) return (neg * ret) | 0 || 0;
    ret = (10 * ret + c) | 0;
  }
  return neg * ret || 0;
}

function parseScientific(main: number, data: Uint8Array, start: number, end: number): number {
  if (data[start] === 43) start++;
  let p = start;
  let ret = 0;
  let neg = 1;
  if (data[p] === 45) {
    neg = -1;
    p++;
  } else if (data[p] === 43) p++;
  let exponent: number | undefined;
  for (; p < end; p++) {
    const c = data[p] - 48;
    if (c > 9 || c < 0) {
      exponent = (neg * ret) | 0;
      break;
    }
    ret = (10 * ret + c) | 0;
  }
  // biome-ignore lint/style/useExponentiationOperator: Math.pow exactly as Mol*'s parser calls it
  return main * Math.pow(10.0, exponent ?? neg * ret);
}

/** Mol*'s fastParseFloat over bytes (the same arithmetic, so the same doubles), then `|| 0` as CifField.float. */
function cifFloat(data: Uint8Array, start: number, end: number): number {
  let p = start;
  let neg = 1.0;
  let ret = 0.0;
  let point = 0.0;
  let div = 1.0;
  if (data[p] === 45) {
    neg = -1;
    p++;
  } else if (data[p] === 43) p++;
  while (p < end) {
    let c = data[p] - 48;
    if (c >= 0 && c < 10) {
      ret = ret * 10 + c;
      p++;
    } else if (c === -2) {
      p++;
      while (p < end) {
        c = data[p] - 48;
        if (c >= 0 && c < 10) {
          point = 10.0 * point + c;
          div = 10.0 * div;
          p++;
        } else if (c === 53 || c === 21) {
          return parseScientific(neg * (ret + point / div), data, p + 1, end) || 0;
        } else {
          return neg * (ret + point / div) || 0;
        }
      }
      return neg * (ret + point / div) || 0;
    } else if (c === 53 || c === 21) {
      return parseScientific(neg * ret, data, p + 1, end) || 0;
    } else break;
  }
  return neg * ret || 0;
}

/**
 * Distinct values of a column, numbered in order of first appearance; '.', '?' and empty tokens
 * are value 0, the empty string, as Mol*'s `str` reads them.
 */
class Interner {
  private table = new Int32Array(256).fill(-1);
  private starts: number[] = [0];
  private ends: number[] = [0];
  readonly values: string[] = [''];
  constructor(private readonly data: Uint8Array) {}

  id(start: number, end: number): number {
    const data = this.data;
    const len = end - start;
    if (len === 0) return 0;
    if (len === 1 && (data[start] === 46 || data[start] === 63)) return 0;
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ data[i], 0x01000193);
    const mask = this.table.length - 1;
    let slot = h & mask;
    for (;;) {
      const id = this.table[slot];
      if (id < 0) break;
      if (equalSpans(data, this.starts[id], this.ends[id], start, end)) return id;
      slot = (slot + 1) & mask;
    }
    const id = this.values.length;
    this.starts.push(start);
    this.ends.push(end);
    this.values.push(latin1(data, start, end));
    this.table[slot] = id;
    if (this.values.length * 2 > this.table.length) this.grow();
    return id;
  }

  private grow(): void {
    const table = new Int32Array(this.table.length * 2).fill(-1);
    const mask = table.length - 1;
    for (let id = 1; id < this.values.length; id++) {
      let h = 0x811c9dc5;
      for (let i = this.starts[id]; i < this.ends[id]; i++) h = Math.imul(h ^ this.data[i], 0x01000193);
      let slot = h & mask;
      while (table[slot] >= 0) slot = (slot + 1) & mask;
      table[slot] = id;
    }
    this.table = table;
  }
}

/** The `_atom_site` columns the summary reads. */
const SITE_FIELDS = [
  'Cartn_x',
  'Cartn_y',
  'Cartn_z',
  'type_symbol',
  'label_atom_id',
  'label_comp_id',
  'label_asym_id',
  'label_entity_id',
  'auth_asym_id',
  'label_seq_id',
  'auth_seq_id',
  'pdbx_PDB_ins_code',
  'label_alt_id',
  'pdbx_PDB_model_num',
  'auth_atom_id',
  'auth_comp_id',
] as const;
const [X, Y, Z, TYPE, ATOM, COMP, ASYM, ENTITY, AUTH_ASYM, SEQ, AUTH_SEQ, INS, ALT, MODEL, AUTH_ATOM, AUTH_COMP] = SITE_FIELDS.map((_, i) => i);
/** Columns summarizeCif.ts requires a present value in (when the column exists). */
const MUST_HAVE_VALUES = [ATOM, COMP, ASYM, ENTITY, AUTH_ASYM, AUTH_SEQ, SEQ, AUTH_ATOM, AUTH_COMP];

/** Other categories and the fields of them the summary reads; every row of entity and chem_comp, the first of the rest. */
const KEPT: Record<string, readonly string[]> = {
  entity: ['id', 'type'],
  chem_comp: ['id', 'name'],
  struct: ['title'],
  exptl: ['method'],
  entry: ['id'],
  pdbx_database_status: ['recvd_initial_deposition_date'],
  refine: ['ls_d_res_high'],
  reflns: ['d_resolution_high'],
  em_3d_reconstruction: ['resolution'],
};
const ALL_ROWS = new Set(['entity', 'chem_comp']);

/** Kept values of one category: per field, the [start, end) of each kept row's token. */
interface Kept {
  rows: number;
  spans: Map<string, number[]>;
}

/**
 * Growing typed arrays, one class per element type rather than one generic: each push site in the
 * row loop then sees a single array type and stays monomorphic.
 */
class Growable {
  array: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.array = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.array.length) {
      const next = new Float64Array(this.array.length * 2);
      next.set(this.array);
      this.array = next;
    }
    this.array[this.length++] = v;
  }
  view(): Float64Array {
    return this.array.subarray(0, this.length);
  }
}

class GrowableInt {
  array: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.array = new Int32Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.array.length) {
      const next = new Int32Array(this.array.length * 2);
      next.set(this.array);
      this.array = next;
    }
    this.array[this.length++] = v;
  }
  view(): Int32Array {
    return this.array.subarray(0, this.length);
  }
}

export interface FastCif {
  table: AtomTable;
  models: number;
  /** Title, method, id, date (headerInfo's fields) and resolution, as the token path reads them. */
  header: Partial<StructureSummary>;
}

/** The `_atom_site` loop summarised as its rows arrive. */
class SiteReader {
  /** Position of each SITE_FIELDS column in the loop, or -1. */
  readonly column: Int32Array;
  readonly fieldCount: number;
  private cur: Int32Array;
  private prev: Int32Array;
  private row = 0;
  private filled = 0;
  readonly hasValue = new Uint8Array(SITE_FIELDS.length);
  /** Whether every MUST_HAVE_VALUES column present has shown a value (then no row need look). */
  private allValued = false;
  private entityId = 0;

  models = 1;
  atomCount = -1;
  readonly x: Growable;
  readonly y: Growable;
  readonly z: Growable;
  readonly symbol: GrowableInt;
  readonly atomName: GrowableInt;
  readonly alt: GrowableInt;
  readonly symbols: Interner;
  readonly names: Interner;
  readonly alts: Interner;
  readonly entities: Interner;
  /** Residue names, insertion codes and author chain names, read at residue and chain starts. */
  readonly comps: Interner;
  readonly insCodes: Interner;
  readonly authAsyms: Interner;
  hasAltlocs = false;

  readonly residueOffsets: number[] = [0];
  readonly chainOffsets: number[] = [0];
  readonly residueComp = new GrowableInt(1024);
  readonly residueIns = new GrowableInt(1024);
  readonly residueAuthSeq = new GrowableInt(1024);
  /** Per residue, the index of its chain. */
  readonly residueChain = new GrowableInt(1024);
  readonly chainAuthAsym: string[] = [];
  readonly chainEntity: string[] = [];
  private readonly seenChains = new Set<string>();
  private previousSeq: number | undefined;

  constructor(
    private readonly data: Uint8Array,
    column: Int32Array,
    fieldCount: number,
  ) {
    this.column = column;
    this.fieldCount = fieldCount;
    this.cur = new Int32Array(fieldCount * 2);
    this.prev = new Int32Array(fieldCount * 2);
    const estimate = Math.min(data.length / 80, 1 << 24) | 0;
    this.x = new Growable(estimate);
    this.y = new Growable(estimate);
    this.z = new Growable(estimate);
    this.symbol = new GrowableInt(estimate);
    this.atomName = new GrowableInt(estimate);
    this.alt = new GrowableInt(estimate);
    this.symbols = new Interner(data);
    this.names = new Interner(data);
    this.alts = new Interner(data);
    this.entities = new Interner(data);
    this.comps = new Interner(data);
    this.insCodes = new Interner(data);
    this.authAsyms = new Interner(data);
  }

  add(start: number, end: number): void {
    const k = this.filled;
    this.cur[2 * k] = start;
    this.cur[2 * k + 1] = end;
    if (++this.filled === this.fieldCount) {
      this.filled = 0;
      this.endRow();
    }
  }

  get complete(): boolean {
    return this.filled === 0;
  }

  get rows(): number {
    return this.row;
  }

  private s(field: number): number {
    return this.cur[2 * this.column[field]];
  }
  private e(field: number): number {
    return this.cur[2 * this.column[field] + 1];
  }
  /** Whether this row's value of a column equals the previous row's (true when the column is absent, as summarizeCif's `same`). */
  private same(field: number): boolean {
    const c = this.column[field];
    if (c < 0) return true;
    return equalSpans(this.data, this.prev[2 * c], this.prev[2 * c + 1], this.cur[2 * c], this.cur[2 * c + 1]);
  }
  private text(field: number): string {
    const c = this.column[field];
    return c < 0 ? '' : str(this.data, this.cur[2 * c], this.cur[2 * c + 1]);
  }

  private endRow(): void {
    const data = this.data;
    const row = this.row;
    const column = this.column;
    // Coordinates of every row: present and numbers (checkCifCoordinates).
    let cx = 0;
    let cy = 0;
    let cz = 0;
    for (let f = X; f <= Z; f++) {
      const s = this.s(f);
      const e = this.e(f);
      if (!present(data, s, e)) decline('an atom without coordinates');
      const v = cifFloat(data, s, e);
      if (v === 0 && !isNumberToken(latin1(data, s, e))) decline('a coordinate that is not a number');
      if (f === X) cx = v;
      else if (f === Y) cy = v;
      else cz = v;
    }
    // Every row names an entity (withEntitiesItDescribes; which are described is checked at the end).
    const es = this.s(ENTITY);
    const ee = this.e(ENTITY);
    if (!present(data, es, ee)) decline('an atom without an entity');
    if (!this.allValued) {
      let all = true;
      for (const f of MUST_HAVE_VALUES) {
        if (this.hasValue[f] || column[f] < 0) continue;
        if (present(data, this.s(f), this.e(f))) this.hasValue[f] = 1;
        else all = false;
      }
      this.allValued = all;
    }
    // Models: one per run of equal pdbx_PDB_model_num; the first model is summarised.
    if (row > 0 && column[MODEL] >= 0 && !this.same(MODEL)) {
      if (this.models === 1) this.atomCount = row;
      this.models++;
    }
    if (this.models === 1) {
      const entityId = row > 0 && this.same(ENTITY) ? this.entityId : this.entities.id(es, ee);
      this.entityId = entityId;
      this.x.push(cx);
      this.y.push(cy);
      this.z.push(cz);
      this.symbol.push(this.symbols.id(this.s(TYPE), this.e(TYPE)));
      this.atomName.push(this.names.id(this.s(ATOM), this.e(ATOM)));
      const alt = column[ALT] < 0 ? 0 : this.alts.id(this.s(ALT), this.e(ALT));
      this.alt.push(alt);
      if (alt !== 0) this.hasAltlocs = true;
      if (row === 0) {
        this.startChain(entityId);
        this.startResidue();
      } else {
        const newChain = !this.same(ENTITY) || !this.same(ASYM);
        if (newChain) {
          this.chainOffsets.push(row);
          this.startChain(entityId);
        }
        if (newChain || !this.same(SEQ) || !this.same(AUTH_SEQ) || !this.same(INS)) {
          this.residueOffsets.push(row);
          this.startResidue();
        }
      }
    } else if (!this.same(ENTITY)) {
      this.entities.id(es, ee);
    }
    const swap = this.prev;
    this.prev = this.cur;
    this.cur = swap;
    this.row++;
  }

  private startChain(entityId: number): void {
    const key = `${this.entities.values[entityId]}\u0000${this.text(ASYM)}`;
    if (this.seenChains.has(key)) decline('a chain split in two');
    this.seenChains.add(key);
    this.chainEntity.push(this.entities.values[entityId]);
    this.chainAuthAsym.push(this.authAsyms.values[this.intern(this.authAsyms, AUTH_ASYM)]);
    this.previousSeq = undefined;
  }

  private startResidue(): void {
    const data = this.data;
    const c = this.column[SEQ];
    if (c >= 0) {
      const s = this.cur[2 * c];
      const e = this.cur[2 * c + 1];
      if (present(data, s, e)) {
        const seq = cifInt(data, s, e);
        if (this.previousSeq !== undefined && seq < this.previousSeq) decline('label_seq_id going down within a chain');
        this.previousSeq = seq;
      }
    }
    this.residueComp.push(this.intern(this.comps, COMP));
    this.residueIns.push(this.intern(this.insCodes, INS));
    this.residueAuthSeq.push(cifInt(data, this.s(AUTH_SEQ), this.e(AUTH_SEQ)));
    this.residueChain.push(this.chainOffsets.length - 1);
  }

  /** This row's value of a column as an interned id (0, '', when the column is absent). */
  private intern(values: Interner, field: number): number {
    const c = this.column[field];
    return c < 0 ? 0 : values.id(this.cur[2 * c], this.cur[2 * c + 1]);
  }
}

/**
 * The summary's atom table of an mmCIF's first model, or undefined when the reference path must
 * read the file (see the top of this file). Never throws.
 */
export function readMmcifFast(data: Uint8Array): FastCif | undefined {
  lastCifDecline = '';
  try {
    return read(data);
  } catch (error) {
    if (error instanceof Decline) return undefined;
    lastCifDecline = `failed: ${error instanceof Error ? error.message : String(error)}`;
    return undefined;
  }
}

const ATOM_SITE_NAME = Buffer.from('_atom_site.', 'latin1');

function read(data: Uint8Array): FastCif | undefined {
  // No dotted _atom_site name anywhere (category names are case-sensitive): a small-molecule CIF,
  // a chemical component or no coordinates, which the reference path reads. Found at memchr speed.
  if (Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(ATOM_SITE_NAME) < 0) decline('no _atom_site');
  const t = new Tokenizer(data);
  /** 0 while reading the first data block with categories; later blocks are only tokenized. */
  let block = 0;
  let blockHasCategories = false;
  const seen = new Set<string>();
  const kept = new Map<string, Kept>();
  let sites: SiteReader | undefined;
  let ihm = false;

  const categoryName = (start: number, end: number) => latin1(data, start + 1, end);
  const noteCategory = (name: string) => {
    blockHasCategories = true;
    if (block !== 0) return false;
    if (name === 'ihm_model_list') ihm = true;
    const interesting = name === 'atom_site' || name in KEPT;
    if (seen.has(name) && interesting) decline(`category ${name} given twice`);
    seen.add(name);
    return interesting;
  };

  t.moveNext();
  while (t.tokenType !== Token.End) {
    const token = t.tokenType;
    if (token === Token.Data) {
      // The first block is read without _atom_site: the reference path reads another block.
      if (blockHasCategories && block === 0 && !sites) decline('the first data block has no _atom_site');
      if (blockHasCategories) block++;
      blockHasCategories = false;
      t.moveNext();
    } else if (token === Token.Save) {
      decline('save frames');
    } else if (token === Token.Loop) {
      t.moveNext();
      const nsStart = t.tokenStart;
      const nsEnd = t.namespaceEnd();
      if (t.tokenType !== Token.ColumnName) decline('a loop without names');
      if (nsEnd === t.tokenEnd) decline('a loop of undotted names');
      const name = categoryName(nsStart, nsEnd);
      const fieldNames: string[] = [];
      while (t.tokenType === Token.ColumnName) {
        fieldNames.push(latin1(data, t.tokenStart, t.tokenEnd).substring(name.length + 2));
        t.moveNext();
      }
      const interesting = noteCategory(name);
      const fieldCount = fieldNames.length;
      let count = 0;
      if (interesting && name === 'atom_site') {
        const column = fieldColumns(fieldNames, SITE_FIELDS);
        sites = new SiteReader(data, column, fieldCount);
        readSiteValues(t, sites);
        if (!sites.complete) decline('a loop whose values are not a multiple of its columns');
      } else if (interesting) {
        const wanted = KEPT[name];
        const column = fieldColumns(fieldNames, wanted);
        const spans = new Map<string, number[]>();
        const keepAll = ALL_ROWS.has(name);
        for (const f of wanted) spans.set(f, []);
        while (t.tokenType === Token.Value) {
          const k = count % fieldCount;
          if (keepAll || count < fieldCount) {
            for (let w = 0; w < wanted.length; w++) {
              if (column[w] === k) (spans.get(wanted[w]) as number[]).push(t.tokenStart, t.tokenEnd);
            }
          }
          count++;
          t.moveNext();
        }
        if (count % fieldCount !== 0) decline('a loop whose values are not a multiple of its columns');
        for (let w = 0; w < wanted.length; w++) if (column[w] < 0) spans.delete(wanted[w]);
        kept.set(name, { rows: count / fieldCount, spans });
      } else {
        while (t.tokenType === Token.Value) {
          count++;
          t.moveNext();
        }
        if (count % fieldCount !== 0) decline('a loop whose values are not a multiple of its columns');
      }
    } else if (token === Token.ColumnName) {
      // Mol*'s handleSingle: names of one category, each followed by its value.
      const nsStart = t.tokenStart;
      const nsEnd = t.namespaceEnd();
      const name = categoryName(nsStart, nsEnd);
      const interesting = noteCategory(name);
      if (interesting && name === 'atom_site') decline('_atom_site given as single values');
      const wanted = interesting ? KEPT[name] : undefined;
      const spans = new Map<string, number[]>();
      const names = new Set<string>();
      while (t.tokenType === Token.ColumnName && t.isNamespace(nsStart, nsEnd)) {
        const fieldName = wanted ? latin1(data, t.tokenStart, t.tokenEnd).substring(name.length + 2) : '';
        t.moveNext();
        if ((t.tokenType as Token) !== Token.Value) decline('a data name without a value');
        if (wanted) {
          if (names.has(fieldName)) decline(`field ${name}.${fieldName} given twice`);
          names.add(fieldName);
          const canonical = wanted.find((w) => w.toLowerCase() === fieldName.toLowerCase());
          if (canonical !== undefined && canonical !== fieldName) decline(`field ${name}.${fieldName} spelt in another case`);
          if (canonical === fieldName) spans.set(fieldName, [t.tokenStart, t.tokenEnd]);
        }
        t.moveNext();
      }
      if (wanted) kept.set(name, { rows: 1, spans });
    } else {
      decline('an unexpected token');
    }
  }
  if (block > 0 && !sites) decline('the first data block has no _atom_site');
  if (!sites) decline('no _atom_site');
  if (ihm) decline('an integrative model');
  return summarise(data, sites, kept);
}

/**
 * The values of the `_atom_site` loop: plain tokens (the bulk of an mmCIF) are cut here in one
 * tight loop; anything else (quotes, text fields, comments, names, keywords) goes through the
 * tokenizer, which reads it exactly as for every other loop.
 */
function readSiteValues(t: Tokenizer, sites: SiteReader): void {
  const data = t.data;
  const n = t.length;
  while (t.tokenType === Token.Value) {
    sites.add(t.tokenStart, t.tokenEnd);
    // Plain values for as long as they last.
    let p = t.position;
    for (;;) {
      // Where the whitespace before the next token starts: the tokenizer resumes there, so that it
      // sees the same whitespace Mol*'s does (a ';' opens a text field only after a line end).
      const gap = p;
      while (p < n) {
        const c = data[p];
        if (c === 32 || c === 9 || c === 10 || c === 13) p++;
        else break;
      }
      const first = data[p];
      // The end, no whitespace before the token (after a text field), comments, quotes, text
      // fields, data names: the tokenizer's.
      if (p >= n || p === gap || first === 35 || first === 39 || first === 34 || first === 59 || first === 95) {
        p = gap;
        break;
      }
      const start = p;
      while (p < n) {
        const c = data[p];
        if (c === 32 || c === 10 || c === 13 || c === 9) break;
        p++;
      }
      // data_, save_, loop_ (and any token with '_' fifth): the tokenizer's.
      if (p - start >= 5 && data[start + 4] === 95) {
        p = gap;
        break;
      }
      sites.add(start, p);
    }
    t.position = p;
    t.moveNext();
  }
}

/** Where each wanted field sits among a loop's names (-1 when absent); declines on names spelt in another case or given twice. */
function fieldColumns(fieldNames: string[], wanted: readonly string[]): Int32Array {
  const column = new Int32Array(wanted.length).fill(-1);
  const lower = wanted.map((w) => w.toLowerCase());
  const names = new Set<string>();
  for (let i = 0; i < fieldNames.length; i++) {
    const name = fieldNames[i];
    if (names.has(name)) decline(`field ${name} given twice`);
    names.add(name);
    const w = lower.indexOf(name.toLowerCase());
    if (w < 0) continue;
    if (wanted[w] !== name) decline(`field ${name} spelt in another case`);
    column[w] = i;
  }
  return column;
}

function summarise(data: Uint8Array, sites: SiteReader, kept: Map<string, Kept>): FastCif {
  const { column } = sites;
  for (const f of [X, Y, Z, TYPE, ATOM, COMP, ASYM, ENTITY, AUTH_ASYM, AUTH_SEQ, SEQ]) if (column[f] < 0) decline(`no ${SITE_FIELDS[f]} column`);
  if (sites.rows === 0) decline('no atoms');
  for (const f of MUST_HAVE_VALUES) if (column[f] >= 0 && !sites.hasValue[f]) decline(`no value in ${SITE_FIELDS[f]}`);

  const entity = kept.get('entity');
  const ids = entity?.spans.get('id');
  const types = entity?.spans.get('type');
  if (!entity || !ids || !types) decline('no _entity ids and types');
  const typeOfEntity = new Map<string, string>();
  for (let i = 0; i < entity.rows; i++) typeOfEntity.set(str(data, ids[2 * i], ids[2 * i + 1]), str(data, types[2 * i], types[2 * i + 1]).toLowerCase());
  for (let id = 1; id < sites.entities.values.length; id++) if (!typeOfEntity.has(sites.entities.values[id])) decline('an atom of an undescribed entity');
  const chainType = sites.chainEntity.map((id) => typeOfEntity.get(id));

  const componentNames = new Map<string, string>();
  const chemComp = kept.get('chem_comp');
  const compIds = chemComp?.spans.get('id');
  const compNames = chemComp?.spans.get('name');
  if (chemComp && compIds) {
    for (let i = 0; i < chemComp.rows; i++) {
      const name = compNames && present(data, compNames[2 * i], compNames[2 * i + 1]) ? str(data, compNames[2 * i], compNames[2 * i + 1]) : '';
      componentNames.set(str(data, compIds[2 * i], compIds[2 * i + 1]), name);
    }
  }

  const atomCount = sites.models === 1 ? sites.rows : sites.atomCount;
  const residueOffsets = sites.residueOffsets;
  const residueCount = residueOffsets.length;
  const offsets = new Int32Array(residueCount + 1);
  offsets.set(residueOffsets);
  offsets[residueCount] = atomCount;
  const chainOffsets = [...sites.chainOffsets, atomCount];
  // chainOffsets ends with the atom count, which is no chain's start.
  const chainOfAtom = (atom: number): number => runAt(chainOffsets, atom, chainOffsets.length - 2);
  const symbolIds = sites.symbol.view();
  const symbols = sites.symbols.values;
  const nameIds = sites.atomName.view();
  const names = sites.names.values;
  const altIds = sites.alt.view();
  const alts = sites.alts.values;
  const altCount = alts.length;
  const comps = sites.comps.values;
  const residueComp = sites.residueComp.view();
  const insCodes = sites.insCodes.values;
  const residueIns = sites.residueIns.view();
  const residueAuthSeq = sites.residueAuthSeq.view();
  const residueChain = sites.residueChain.view();
  const xs = sites.x.view();
  const ys = sites.y.view();
  const zs = sites.z.view();
  const table: AtomTable = {
    atomCount,
    typeSymbol: (i) => symbols[symbolIds[i]],
    atomName: (i) => names[nameIds[i]],
    altId: (i) => alts[altIds[i]],
    compId: (i) => comps[residueComp[residueOfAtom(offsets, residueCount, i)]],
    x: (i) => xs[i],
    y: (i) => ys[i],
    z: (i) => zs[i],
    coordinates: { x: xs, y: ys, z: zs },
    symbolIndex: { index: symbolIds, symbols },
    hasAltlocs: sites.hasAltlocs,
    atomKey: (i) => nameIds[i] * altCount + altIds[i],
    residueCount,
    residueOffsets: offsets,
    insCode: (r) => insCodes[residueIns[r]],
    authSeqId: (r) => residueAuthSeq[r],
    chainName: (a) => sites.chainAuthAsym[chainOfAtom(a)],
    chainCount: sites.chainAuthAsym.length,
    chainNameAt: (c) => sites.chainAuthAsym[c],
    entityType: (r) => chainType[residueChain[r]],
    entityCount: entity.rows,
    componentName: (comp) => componentNames.get(comp),
  };

  // headerInfo and cifResolution (parse.ts) over the kept first rows.
  const first = (category: string, field: string): [number, number] | undefined => {
    const spans = kept.get(category)?.spans.get(field);
    return spans && spans.length >= 2 && (kept.get(category)?.rows ?? 0) > 0 ? [spans[0], spans[1]] : undefined;
  };
  const value = (category: string, field: string): string | undefined => {
    const span = first(category, field);
    if (!span || !present(data, span[0], span[1])) return undefined;
    const v = str(data, span[0], span[1]).trim();
    return v && v !== '?' && v !== '.' ? v : undefined;
  };
  const header: Partial<StructureSummary> = {};
  const title = value('struct', 'title');
  if (title) header.title = title;
  const method = value('exptl', 'method');
  if (method) header.method = method.toUpperCase();
  const id = value('entry', 'id');
  if (id && /^[0-9][A-Za-z0-9]{3}$/.test(id)) header.pdbId = id.toUpperCase();
  const date = value('pdbx_database_status', 'recvd_initial_deposition_date');
  if (date) header.depositionDate = date;
  for (const [category, field] of [
    ['refine', 'ls_d_res_high'],
    ['reflns', 'd_resolution_high'],
    ['em_3d_reconstruction', 'resolution'],
  ]) {
    const span = first(category, field);
    const resolution = span ? cifFloat(data, span[0], span[1]) : undefined;
    if (resolution !== undefined && Number.isFinite(resolution) && resolution > 0) {
      header.resolution = resolution;
      break;
    }
  }
  return { table, models: sites.models, header };
}

function residueOfAtom(offsets: Int32Array, residueCount: number, atom: number): number {
  let lo = 0;
  let hi = residueCount - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= atom) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
