/**
 * What Mol* 5.11 infers of a PDB file's components and entities (its ComponentBuilder and
 * EntityBuilder of structure/common, and its HETNAM, SEQRES and COMPND parsers of pdb/entity.js),
 * kept here so that the byte-level PDB reader (pdbFast.ts) loads neither Mol*'s model/types.js
 * (which those builders import) nor its CIF reader. Only what the reader uses is kept; each part
 * does what Mol*'s does, step by step: test/formats.residueNames.test.ts runs both on every PDB
 * file of the corpus and compares.
 */

import { isPolymer, MoleculeType, PolymerNames, SaccharideCompIds, WaterNames } from './residueNames.js';

export interface Component {
  id: string;
  name: string;
  type: string;
}

const ProteinAtomIdsList = [new Set(['CA']), new Set(['C']), new Set(['N'])];
const RnaAtomIdsList = [new Set(['P', "O3'", 'O3*']), new Set(["C4'", 'C4*']), new Set(["O2'", 'O2*', "F2'", 'F2*'])];
const DnaAtomIdsList = [new Set(['P', "O3'", 'O3*']), new Set(["C3'", 'C3*']), new Set(["O2'", 'O2*', "F2'", 'F2*'])];
/** Mol*'s guard against typing these by their atom names. */
const NonPolymerNames = new Set(['FMN', 'NCN', 'FNS', 'FMA', 'ATP', 'ADP', 'AMP', 'GTP', 'GDP', 'GMP', 'LIG']);

const components = (list: [string, string, string][]) => new Map(list.map(([id, name, type]) => [id, { id, name, type }]));
const StandardComponents = components([
  ['HIS', 'HISTIDINE', 'l-peptide linking'],
  ['ARG', 'ARGININE', 'l-peptide linking'],
  ['LYS', 'LYSINE', 'l-peptide linking'],
  ['ILE', 'ISOLEUCINE', 'l-peptide linking'],
  ['PHE', 'PHENYLALANINE', 'l-peptide linking'],
  ['LEU', 'LEUCINE', 'l-peptide linking'],
  ['TRP', 'TRYPTOPHAN', 'l-peptide linking'],
  ['ALA', 'ALANINE', 'l-peptide linking'],
  ['MET', 'METHIONINE', 'l-peptide linking'],
  ['CYS', 'CYSTEINE', 'l-peptide linking'],
  ['ASN', 'ASPARAGINE', 'l-peptide linking'],
  ['VAL', 'VALINE', 'l-peptide linking'],
  ['GLY', 'GLYCINE', 'peptide linking'],
  ['SER', 'SERINE', 'l-peptide linking'],
  ['GLN', 'GLUTAMINE', 'l-peptide linking'],
  ['TYR', 'TYROSINE', 'l-peptide linking'],
  ['ASP', 'ASPARTIC ACID', 'l-peptide linking'],
  ['GLU', 'GLUTAMIC ACID', 'l-peptide linking'],
  ['THR', 'THREONINE', 'l-peptide linking'],
  ['PRO', 'PROLINE', 'l-peptide linking'],
  ['SEC', 'SELENOCYSTEINE', 'l-peptide linking'],
  ['PYL', 'PYRROLYSINE', 'l-peptide linking'],
  ['MSE', 'SELENOMETHIONINE', 'l-peptide linking'],
  ['SEP', 'PHOSPHOSERINE', 'l-peptide linking'],
  ['TPO', 'PHOSPHOTHREONINE', 'l-peptide linking'],
  ['PTR', 'O-PHOSPHOTYROSINE', 'l-peptide linking'],
  ['PCA', 'PYROGLUTAMIC ACID', 'l-peptide linking'],
  ['A', "ADENOSINE-5'-MONOPHOSPHATE", 'rna linking'],
  ['C', "CYTIDINE-5'-MONOPHOSPHATE", 'rna linking'],
  ['T', "THYMIDINE-5'-MONOPHOSPHATE", 'rna linking'],
  ['G', "GUANOSINE-5'-MONOPHOSPHATE", 'rna linking'],
  ['I', 'INOSINIC ACID', 'rna linking'],
  ['U', "URIDINE-5'-MONOPHOSPHATE", 'rna linking'],
  ['DA', "2'-DEOXYADENOSINE-5'-MONOPHOSPHATE", 'dna linking'],
  ['DC', "2'-DEOXYCYTIDINE-5'-MONOPHOSPHATE", 'dna linking'],
  ['DT', "THYMIDINE-5'-MONOPHOSPHATE", 'dna linking'],
  ['DG', "2'-DEOXYGUANOSINE-5'-MONOPHOSPHATE", 'dna linking'],
  ['DI', "2'-DEOXYINOSINE-5'-MONOPHOSPHATE", 'dna linking'],
  ['DU', "2'-DEOXYURIDINE-5'-MONOPHOSPHATE", 'dna linking'],
]);
const CharmmIonComponents = components([
  ['ZN2', 'ZINC ION', 'ion'],
  ['SOD', 'SODIUM ION', 'ion'],
  ['CES', 'CESIUM ION', 'ion'],
  ['CLA', 'CHLORIDE ION', 'ion'],
  ['CAL', 'CALCIUM ION', 'ion'],
  ['POT', 'POTASSIUM ION', 'ion'],
]);

function areIntersecting(a: Set<string>, b: Set<string>): boolean {
  if (a === b) return a.size > 0;
  const [large, small] = a.size < b.size ? [b, a] : [a, b];
  for (const e of small) if (large.has(e)) return true;
  return false;
}

/** Mol*'s ComponentBuilder (what of it a summary reads): a component per residue name, typed on first sight. */
export class ComponentBuilder {
  private readonly namesMap = new Map<string, string>();
  private readonly comps = new Map<string, Component>();
  /** Component ids in the order they were first seen. */
  readonly ids: string[] = [];
  readonly monNstdFlags: string[] = [];

  /** `seqId` and `atomId` of each atom row (auth_seq_id, auth_atom_id), `rowCount` rows. */
  constructor(
    private readonly rowCount: number,
    private readonly seqId: (row: number) => number,
    private readonly atomId: (row: number) => string,
  ) {}

  private set(c: Component) {
    this.comps.set(c.id, c);
    this.ids.push(c.id);
    this.monNstdFlags.push(PolymerNames.has(c.id) ? 'y' : 'n');
  }

  /** The atom names of the run of rows from `index` with its sequence number. */
  private getAtomIds(index: number): Set<string> {
    const atomIds = new Set<string>();
    const prevSeqId = this.seqId(index);
    while (index < this.rowCount) {
      if (this.seqId(index) !== prevSeqId) break;
      atomIds.add(this.atomId(index));
      index += 1;
    }
    return atomIds;
  }

  private static hasAtomIds(atomIds: Set<string>, list: Set<string>[]): boolean {
    for (const ids of list) if (!areIntersecting(atomIds, ids)) return false;
    return true;
  }

  private static getType(atomIds: Set<string>): string {
    if (ComponentBuilder.hasAtomIds(atomIds, ProteinAtomIdsList)) return 'peptide linking';
    if (ComponentBuilder.hasAtomIds(atomIds, RnaAtomIdsList)) return 'rna linking';
    if (ComponentBuilder.hasAtomIds(atomIds, DnaAtomIdsList)) return 'dna linking';
    return 'other';
  }

  has(compId: string): boolean {
    return this.comps.has(compId);
  }

  get(compId: string): Component | undefined {
    return this.comps.get(compId);
  }

  /** The component of `compId`, typed from the atoms of row `index`'s residue when first seen. */
  add(compId: string, index: number): Component {
    if (!this.has(compId)) {
      const standard = StandardComponents.get(compId);
      if (standard) this.set(standard);
      else if (WaterNames.has(compId)) this.set({ id: compId, name: 'WATER', type: 'non-polymer' });
      else if (NonPolymerNames.has(compId.toUpperCase())) this.set({ id: compId, name: this.namesMap.get(compId) || compId, type: 'non-polymer' });
      else if (SaccharideCompIds.has(compId.toUpperCase())) this.set({ id: compId, name: this.namesMap.get(compId) || compId, type: 'saccharide' });
      else {
        const atomIds = this.getAtomIds(index);
        const ion = CharmmIonComponents.get(compId);
        if (atomIds.size === 1 && ion) this.set(ion);
        else this.set({ id: compId, name: this.namesMap.get(compId) || compId, type: ComponentBuilder.getType(atomIds) });
      }
    }
    return this.get(compId) as Component;
  }

  setNames(names: readonly [string, string][]) {
    for (const [id, name] of names) this.namesMap.set(id, name);
  }
}

export interface Compound {
  chains: string[];
  description: string;
}

/** Mol*'s EntityBuilder (what of it a summary reads): entity ids and types, given out as atoms ask for them. */
export class EntityBuilder {
  private count = 0;
  readonly ids: string[] = [];
  readonly types: string[] = [];
  readonly descriptions: string[][] = [];
  private readonly compoundsMap = new Map<string, string>();
  private readonly seqresMap = new Map<string, Sequence>();
  private readonly namesMap = new Map<string, string>();
  private readonly heteroMap = new Map<string, string>();
  private readonly chainMap = new Map<string, string>();
  /** Entities by SEQRES sequence (Sequence.id): Mol*'s map by the sequence's residues joined with '-'. */
  private readonly sequenceMap = new Map<number, string>();
  private polymerCount = 0;
  private waterId: string | undefined;

  private set(type: string, description: string) {
    this.count += 1;
    this.ids.push(`${this.count}`);
    this.types.push(type);
    this.descriptions.push([description]);
  }

  private addPolymer<K>(map: Map<K, string>, key: K): string {
    if (!map.has(key)) {
      this.polymerCount += 1;
      this.set('polymer', `Polymer ${this.polymerCount}`);
      map.set(key, `${this.count}`);
    }
    return map.get(key) as string;
  }

  /** `name`: Mol*'s key in its map (a sequence's is its residues joined with '-'), which names the entity. */
  private addNonPolymer<K>(map: Map<K, string>, key: K, moleculeType: MoleculeType, name: string): string {
    if (!map.has(key)) {
      this.set(moleculeType === MoleculeType.Saccharide ? 'branched' : 'non-polymer', this.namesMap.get(name) || name);
      map.set(key, `${this.count}`);
    }
    return map.get(key) as string;
  }

  getEntityId(compId: string, moleculeType: MoleculeType, chainId: string): string {
    if (moleculeType === MoleculeType.Water) {
      if (this.waterId === undefined) {
        this.set('water', 'Water');
        this.waterId = `${this.count}`;
      }
      return this.waterId;
    }
    if (isPolymer(moleculeType)) {
      const compound = this.compoundsMap.get(chainId);
      if (compound !== undefined) return compound;
      const seqres = this.seqresMap.get(chainId);
      if (seqres?.has(compId)) return this.addPolymer(this.sequenceMap, seqres.id);
      return this.addPolymer(this.chainMap, chainId);
    }
    const seqres = this.seqresMap.get(chainId);
    if (seqres?.has(compId)) return this.addNonPolymer(this.sequenceMap, seqres.id, moleculeType, seqres.joined());
    return this.addNonPolymer(this.heteroMap, compId, moleculeType, compId);
  }

  setCompounds(compounds: Compound[]) {
    for (const { chains, description } of compounds) {
      this.set('polymer', description);
      for (const chain of chains) this.compoundsMap.set(chain, `${this.count}`);
    }
  }

  setNames(names: readonly [string, string][]) {
    for (const [id, name] of names) this.namesMap.set(id, name);
  }

  setSeqres(seqresMap: Map<string, string[]>) {
    // Chains with the same residues share a Sequence, and chains whose residues join to the same
    // key its id: found by comparing the lists (chains are few) rather than by joining every
    // chain's residues and hashing the result.
    const sequences: Sequence[] = [];
    for (const [chainId, residues] of seqresMap) {
      let sequence = sequences.find((known) => sameStrings(known.residues, residues));
      if (!sequence) {
        sequence = new Sequence(sequences.find((known) => known.joinsAs(residues))?.id ?? sequences.length, residues);
        sequences.push(sequence);
      }
      this.seqresMap.set(chainId, sequence);
    }
  }

  /** The entity of a SEQRES chain; throws, as Mol*'s does, when no atom has asked for an entity yet. */
  getEntityIdForChain(chainId: string): string | undefined {
    if (this.compoundsMap.size === 0 && this.chainMap.size === 0 && this.sequenceMap.size === 0) {
      throw new Error('EntityBuilder.getEntityIdForChain called before any atoms were processed. Call getEntityId for all atoms first.');
    }
    const compound = this.compoundsMap.get(chainId);
    if (compound !== undefined) return compound;
    const seqres = this.seqresMap.get(chainId);
    if (seqres) {
      const entity = this.sequenceMap.get(seqres.id);
      if (entity !== undefined) return entity;
    }
    return this.chainMap.get(chainId);
  }
}

/**
 * A chain's SEQRES residues, as Mol*'s EntityBuilder keeps them: their names joined with '-' (the
 * key that gives chains one entity) and a set of them. `id` stands for the key: the same for every
 * chain whose residues join to it. The key and the set are made when asked for.
 */
class Sequence {
  private residueSet: Set<string> | undefined;
  private key: string | undefined;
  private dashes: boolean | undefined;
  constructor(
    readonly id: number,
    readonly residues: readonly string[],
  ) {}

  has(compId: string): boolean {
    this.residueSet ??= new Set(this.residues);
    return this.residueSet.has(compId);
  }

  joined(): string {
    this.key ??= this.residues.join('-');
    return this.key;
  }

  /** Whether other residues than these join with '-' to this key: only when a name holds a '-', or for [] and ['']. */
  joinsAs(residues: readonly string[]): boolean {
    this.dashes ??= this.residues.some((name) => name.includes('-'));
    if (!this.dashes && this.residues.length > 0 && residues.length > 0 && !residues.some((name) => name.includes('-'))) return false;
    return this.joined() === residues.join('-');
  }
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** An object, as Mol*'s is, tested with `in`: a name such as "toString" counts as a specification there too. */
const COMPND_SPECS = { MOL_ID: '', MOLECULE: '', CHAIN: '', FRAGMENT: '', SYNONYM: '', EC: '', ENGINEERED: '', MUTATION: '', OTHER_DETAILS: '' };

/** Mol*'s parseCmpnd: one compound per chain a COMPND block names (its lines without line ends). */
export function parseCmpnd(lines: readonly string[]): Compound[] {
  let currentSpec: string | undefined;
  let currentCompound: Compound = { chains: [], description: '' };
  const compounds: Compound[] = [];
  for (const line of lines) {
    const cmpnd = line.substring(10, 80).trim();
    const specEnd = cmpnd.indexOf(':');
    const spec = cmpnd.substring(0, specEnd);
    let value: string;
    if (spec in COMPND_SPECS) {
      currentSpec = spec;
      value = cmpnd.substring(specEnd + 2);
    } else value = cmpnd;
    value = value.replace(/;$/, '');
    if (currentSpec === 'MOL_ID') {
      currentCompound = { chains: [], description: '' };
      compounds.push(currentCompound);
    } else if (currentSpec === 'MOLECULE') {
      if (currentCompound.description) currentCompound.description += ' ';
      currentCompound.description += value;
    } else if (currentSpec === 'CHAIN') {
      currentCompound.chains.push(...value.split(/\s*,\s*/));
    }
  }
  const singletons: Compound[] = [];
  for (const comp of compounds) for (const chain of comp.chains) singletons.push({ description: comp.description, chains: [chain] });
  return singletons;
}

/** Mol*'s parseHetnam: the name of each het id of a HETNAM block, continuation lines joined. */
export function parseHetnam(lines: readonly string[]): Map<string, string> {
  const hetnams = new Map<string, string>();
  for (const line of lines) {
    const het = line.substring(11, 14).trim();
    const name = line.substring(15).trim();
    const before = hetnams.get(het);
    hetnams.set(het, before !== undefined ? `${before} ${name}` : name);
  }
  return hetnams;
}

/** Mol*'s parseSeqres: each chain's residue names from SEQRES lines. */
export function parseSeqres(lines: readonly string[]): Map<string, string[]> {
  const seqresMap = new Map<string, string[]>();
  for (const line of lines) {
    const chainId = line.substring(11, 12);
    let list = seqresMap.get(chainId);
    if (!list) {
      list = [];
      seqresMap.set(chainId, list);
    }
    pushWords(line, 19, list);
  }
  return seqresMap;
}

/**
 * The words of text.substring(from) as `.trim().split(/\s+/)` gives them (one empty word when it is
 * blank), pushed onto `into`: the same whitespace, without a regular expression and a temporary
 * array per line.
 */
function pushWords(text: string, from: number, into: string[]): void {
  const n = text.length;
  let i = from;
  while (i < n && isWhiteSpace(text.charCodeAt(i))) i++;
  if (i >= n) {
    into.push('');
    return;
  }
  while (i < n) {
    const start = i;
    while (i < n && !isWhiteSpace(text.charCodeAt(i))) i++;
    into.push(i - start <= 3 ? shortWord(text, start, i) : text.substring(start, i));
    while (i < n && isWhiteSpace(text.charCodeAt(i))) i++;
  }
}

/** Words of up to 3 latin1 characters made so far, by their characters: a chain's SEQRES names a few residues many times. */
const shortWords = new Map<number, string>();
const SHORT_WORDS_KEPT = 4096;

/** text.substring(start, end) (at most 3 characters), the same string each time for the same characters. */
function shortWord(text: string, start: number, end: number): string {
  let key = end - start;
  for (let k = start; k < end; k++) {
    const c = text.charCodeAt(k);
    if (c > 255) return text.substring(start, end);
    key = (key << 8) | c;
  }
  let word = shortWords.get(key);
  if (word === undefined) {
    word = text.substring(start, end);
    if (shortWords.size < SHORT_WORDS_KEPT) shortWords.set(key, word);
  }
  return word;
}

/** What String.prototype.trim and \s take as white space (ECMAScript WhiteSpace and LineTerminator). */
function isWhiteSpace(c: number): boolean {
  if (c < 128) return c === 32 || (c >= 9 && c <= 13);
  return (
    c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

/**
 * What Mol*'s getEntityPolySeq asks of the entities: each SEQRES chain's entity. It throws, as
 * Mol*'s does, when SEQRES names chains and no atom asked for an entity.
 */
export function checkEntityPolySeq(seqresMap: Map<string, string[]>, entities: EntityBuilder): void {
  for (const chainId of seqresMap.keys()) entities.getEntityIdForChain(chainId);
}
