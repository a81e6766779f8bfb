/**
 * Seeded mutants of real structure files, for the fuzz test (test/fuzz.test.ts) and `npm run fuzz`
 * (bench/fuzz.ts). The same seed gives the same mutants, so a failure can be replayed: each mutant
 * names its seed file, its mutation and its own seed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

export interface SeedFile {
  /** Where it came from (relative path), for reports. */
  name: string;
  /** The file's format family, from its folder or extension: pdb, cif, sdf, mol, mol2, xyz. */
  format: string;
  /** Uncompressed content. */
  content: Buffer;
}

export interface Mutant {
  /** A file name with the seed's extension (plus .gz or .bz2 when compressed). */
  name: string;
  seed: string;
  mutation: string;
  content: Buffer;
}

/** mulberry32: small, fast and good enough to choose mutations. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)];
const int = (rng: Rng, max: number) => Math.floor(rng() * max);

const lines = (content: Buffer) => content.toString('latin1').split('\n');
const join = (parts: string[]) => Buffer.from(parts.join('\n'), 'latin1');

/** A line worth mutating: one with atoms (coordinates), else any non-blank line. */
function atomLineIndex(rng: Rng, all: string[]): number {
  const atoms = all.flatMap((l, i) => (/-?\d+\.\d+\s+-?\d+\.\d+\s+-?\d+\.\d+/.test(l) ? [i] : []));
  if (atoms.length > 0) return pick(rng, atoms);
  const any = all.flatMap((l, i) => (l.trim() ? [i] : []));
  return any.length > 0 ? pick(rng, any) : 0;
}

const NUMBER = /-?\d+\.\d+(?:[eE][-+]?\d+)?/g;

function replaceNumbers(rng: Rng, content: Buffer, values: readonly string[]): Buffer {
  const all = lines(content);
  for (let n = 1 + int(rng, 3); n > 0; n--) {
    const i = atomLineIndex(rng, all);
    const matches = [...all[i].matchAll(NUMBER)];
    if (matches.length === 0) continue;
    const m = pick(rng, matches);
    const value = pick(rng, values);
    // Keep the width where the format has columns (PDB), when the value fits.
    const text = value.length <= m[0].length ? value.padStart(m[0].length) : value;
    all[i] = all[i].slice(0, m.index) + text + all[i].slice((m.index ?? 0) + m[0].length);
  }
  return join(all);
}

function insertBytes(rng: Rng, content: Buffer, bytes: () => number, count: number): Buffer {
  const out = Buffer.from(content);
  const all = lines(content);
  const pieces: Buffer[] = [];
  let last = 0;
  const positions = Array.from({ length: count }, () => {
    // Mostly inside an atom or title line, where text ends up in the summary.
    const line = rng() < 0.7 ? atomLineIndex(rng, all) : int(rng, all.length);
    let offset = 0;
    for (let i = 0; i < line; i++) offset += all[i].length + 1;
    return Math.min(out.length, offset + int(rng, Math.max(1, all[line]?.length ?? 1)));
  }).sort((a, b) => a - b);
  for (const at of positions) {
    pieces.push(out.subarray(last, at), Buffer.from([bytes()]));
    last = at;
  }
  pieces.push(out.subarray(last));
  return Buffer.concat(pieces);
}

const CONTROL_BYTES = [0x01, 0x02, 0x07, 0x08, 0x0b, 0x0c, 0x1a, 0x1b, 0x1f, 0x7f, 0x85, 0x9b];

function bzip2(content: Buffer): Buffer {
  return execFileSync('bzip2', ['-c'], { input: content, maxBuffer: 256 * 1024 * 1024 });
}

/** Every mutation, by name: each takes the seed's content and returns the mutant's bytes (uncompressed unless it says). */
export const MUTATIONS: Record<string, (rng: Rng, seed: SeedFile) => { content: Buffer; compressed?: 'gz' | 'bz2' }> = {
  byteFlips: (rng, { content }) => {
    const out = Buffer.from(content);
    for (let n = 1 + int(rng, 16); n > 0 && out.length > 0; n--) out[int(rng, out.length)] = int(rng, 256);
    return { content: out };
  },
  truncation: (rng, { content }) => ({ content: content.subarray(0, int(rng, content.length)) }),
  duplicatedLines: (rng, { content }) => {
    const all = lines(content);
    const start = int(rng, all.length);
    const block = all.slice(start, start + 1 + int(rng, 40));
    const at = int(rng, all.length);
    return { content: join([...all.slice(0, at), ...block, ...block, ...all.slice(at)]) };
  },
  swappedLines: (rng, { content }) => {
    const all = lines(content);
    for (let n = 1 + int(rng, 6); n > 0; n--) {
      const a = int(rng, all.length);
      const b = rng() < 0.5 ? Math.min(all.length - 1, a + 1) : int(rng, all.length);
      [all[a], all[b]] = [all[b], all[a]];
    }
    return { content: join(all) };
  },
  hugeNumbers: (rng, seed) => ({
    content: replaceNumbers(rng, seed.content, ['4.4e23', '1e308', '1e400', '-9999999.999', '99999999', '1.0e-320', '123456789012345678901234567890.5']),
  }),
  notANumber: (rng, seed) => ({ content: replaceNumbers(rng, seed.content, ['NaN', 'nan', 'inf', '-inf', 'Infinity', '1.2.3', '--1.0', '', '?', '.']) }),
  hugeLine: (rng, { content }) => {
    const all = lines(content);
    const filler = pick(rng, ['A', '9', ' ', '1.5 ', 'ATOM  ', "'", '"', ';', '_x ']);
    const line = filler.repeat(Math.ceil((2 * 1024 * 1024) / filler.length));
    const at = int(rng, all.length + 1);
    return { content: join([...all.slice(0, at), line, ...all.slice(at)]) };
  },
  cifLoopAbuse: (rng, seed) => {
    const all = lines(seed.content);
    const abuse = pick(rng, [
      // A loop with thousands of columns and no rows.
      () => ['loop_', ...Array.from({ length: 5000 }, (_, i) => `_atom_site.extra_${i}`)],
      // A loop header that repeats the atom_site category.
      () => ['loop_', '_atom_site.id', '_atom_site.Cartn_x', '_atom_site.Cartn_x', '1 2 3'],
      // Values that do not fill the last row.
      () => ['loop_', '_atom_site.id', '_atom_site.type_symbol', '_atom_site.Cartn_x', '_atom_site.Cartn_y', '1 C 1.0'],
      // An unterminated multi-line text field.
      () => ['_struct.title', ';A title that never ends'],
      // An unterminated quote, a stray loop_, a second data block.
      () => ["_struct.title 'never closed", 'loop_', 'loop_', 'data_', 'data_second'],
      // Deeply repeated stop_/global_ keywords.
      () => Array.from({ length: 2000 }, (_, i) => (i % 2 ? 'stop_' : 'global_')),
    ])();
    const at = rng() < 0.5 ? all.length : int(rng, all.length);
    if (seed.format === 'cif' || rng() < 0.3) return { content: join([...all.slice(0, at), ...abuse, ...all.slice(at)]) };
    // Not a CIF: abuse its structure the nearest way (a block duplicated many times).
    const block = all.slice(0, Math.min(all.length, 10));
    return { content: join([...all, ...Array.from({ length: 500 }, () => block).flat()]) };
  },
  corruptGzip: (rng, { content }) => {
    const gz = Buffer.from(gzipSync(content));
    const kind = int(rng, 3);
    if (kind === 0) return { content: gz.subarray(0, 10 + int(rng, Math.max(1, gz.length - 10))), compressed: 'gz' };
    if (kind === 1) {
      for (let n = 1 + int(rng, 8); n > 0; n--) gz[10 + int(rng, Math.max(1, gz.length - 18))] ^= 1 + int(rng, 255);
      return { content: gz, compressed: 'gz' };
    }
    // A sound gzip member followed by garbage.
    return { content: Buffer.concat([gz, Buffer.from('not gzip at all\x00\xff')]), compressed: 'gz' };
  },
  corruptBzip2: (rng, { content }) => {
    const bz = bzip2(content.subarray(0, Math.min(content.length, 512 * 1024)));
    if (rng() < 0.5) return { content: bz.subarray(0, 4 + int(rng, Math.max(1, bz.length - 4))), compressed: 'bz2' };
    for (let n = 1 + int(rng, 8); n > 0; n--) bz[10 + int(rng, Math.max(1, bz.length - 10))] ^= 1 + int(rng, 255);
    return { content: bz, compressed: 'bz2' };
  },
  nulBytes: (rng, { content }) => ({ content: insertBytes(rng, content, () => 0, 1 + int(rng, 4)) }),
  controlBytes: (rng, { content }) => ({ content: insertBytes(rng, content, () => pick(rng, CONTROL_BYTES), 1 + int(rng, 8)) }),
};

export const MUTATION_NAMES = Object.keys(MUTATIONS);

/**
 * `count` mutants of `seeds`, deterministic for `seed`: mutations taken in turn (so every one is
 * used), seed files chosen at random with every format taking its turn.
 */
export function makeMutants(seeds: readonly SeedFile[], count: number, seed: number): Mutant[] {
  const byFormat = new Map<string, SeedFile[]>();
  for (const file of seeds) byFormat.set(file.format, [...(byFormat.get(file.format) ?? []), file]);
  const formats = [...byFormat.keys()].sort();
  const mutants: Mutant[] = [];
  for (let i = 0; i < count; i++) {
    const mutation = MUTATION_NAMES[i % MUTATION_NAMES.length];
    const rng = random(seed * 100_003 + i);
    const family = byFormat.get(formats[Math.floor(i / MUTATION_NAMES.length) % formats.length]) as SeedFile[];
    const file = pick(rng, family);
    const { content, compressed } = MUTATIONS[mutation](rng, file);
    const base = path.basename(file.name).replace(/\.(gz|bz2)$/, '');
    mutants.push({ name: `m${i}-${mutation}-${base}${compressed ? `.${compressed}` : ''}`, seed: file.name, mutation, content });
  }
  return mutants;
}

const FORMAT_OF_EXTENSION: Record<string, string> = { pdb: 'pdb', ent: 'pdb', cif: 'cif', sdf: 'sdf', sd: 'sdf', mol: 'mol', mol2: 'mol2', xyz: 'xyz' };

/**
 * Seed files: every file under `dirs` (recursively) of a format molvault reads and at most
 * `maxBytes` once unpacked; gzip'd files are unpacked.
 */
export async function loadSeeds(dirs: readonly string[], maxBytes: number): Promise<SeedFile[]> {
  const seeds: SeedFile[] = [];
  for (const dir of dirs) {
    const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const file = path.join(entry.parentPath, entry.name);
      const extension = entry.name.replace(/\.gz$/, '').split('.').pop()?.toLowerCase() ?? '';
      const format = FORMAT_OF_EXTENSION[extension];
      if (!format) continue;
      const raw = await fs.readFile(file);
      const content = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      if (content.length === 0 || content.length > maxBytes) continue;
      seeds.push({ name: path.relative(path.dirname(dir), file), format, content });
    }
  }
  return seeds.sort((a, b) => a.name.localeCompare(b.name));
}

/** A small XYZ file, so every format has a seed even without the shared corpus (test/fixtures has none). */
export const WATER_XYZ: SeedFile = {
  name: 'generated/water.xyz',
  format: 'xyz',
  content: Buffer.from('3\nwater, three frames of it\nO 0.000 0.000 0.117\nH 0.000 0.757 -0.467\nH 0.000 -0.757 -0.467\n', 'latin1'),
};
