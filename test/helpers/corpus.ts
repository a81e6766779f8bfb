import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Format } from '../../src/formats/types.js';

/** The shared corpus (`../shared/corpus`); absent in a fresh clone. */
export const CORPUS = path.resolve(import.meta.dirname, '../../../shared/corpus');
export const hasCorpus = await fs
  .access(CORPUS)
  .then(() => true)
  .catch(() => false);

export const CORPUS_FOLDERS = ['pdb', 'cif', 'sdf', 'mol2', 'xyz'] as const;

export interface CorpusEntry {
  /** Relative to the corpus root, e.g. `pdb/ngl_1crn.pdb`. */
  file: string;
  features: string;
  notes: string;
  /** For bad/: what a careful reader does with it. */
  verdict?: 'REJECT' | 'ACCEPT' | 'PARTIAL';
}

/** MANIFEST.tsv: one row per file with the measured features and notes SOURCES.md records. */
export async function readManifest(): Promise<CorpusEntry[]> {
  const text = await fs.readFile(path.join(CORPUS, 'MANIFEST.tsv'), 'utf8');
  const [header, ...rows] = text.trim().split('\n');
  const columns = header.split('\t');
  const at = (name: string) => columns.indexOf(name);
  return rows.map((row) => {
    const cells = row.split('\t');
    const notes = cells[at('notes')] ?? '';
    const verdict = /^(REJECT|ACCEPT|PARTIAL)/.exec(notes)?.[1] as CorpusEntry['verdict'];
    return { file: cells[at('file')], features: cells[at('features')] ?? '', notes, verdict };
  });
}

/** The file's content, gunzipped when it is gzip (all members of a multi-member stream). */
export async function corpusContent(file: string): Promise<Buffer> {
  const bytes = await fs.readFile(path.join(CORPUS, file));
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

/** The format a corpus file truly has, from its folder (bad/: from its name); sdf/ holds both SDF and MOL. */
export function trueFormats(file: string): Format[] {
  const folder = file.split('/')[0];
  const name = file.replace(/\.gz$/, '');
  const family = (f: string): Format[] => (f === 'sdf' || f === 'sd' || f === 'mol' ? ['sdf', 'mol'] : [f as Format]);
  if (folder !== 'bad') return family(folder);
  return family(name.slice(name.lastIndexOf('.') + 1));
}

/** `key=value` numbers from a features cell, e.g. `natoms=297; frames=100`. */
export function feature(features: string, key: string): number | undefined {
  const match = new RegExp(`(?:^|[;\\s])${key.replace(/[()$]/g, '\\$&')}=(\\d+)`).exec(features);
  return match ? Number(match[1]) : undefined;
}

/**
 * Each corpus PDB file (gunzipped) as the gemmi CLI writes it in mmCIF, in corpus order; files
 * gemmi refuses are left out. The conversions happen in a scratch folder removed afterwards.
 */
export async function* corpusPdbAsGemmiMmcif(): AsyncGenerator<{ name: string; written: Buffer }> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-gemmi-mmcif-'));
  try {
    for (const name of (await fs.readdir(path.join(CORPUS, 'pdb'))).sort()) {
      const source = path.join(scratch, 'in.pdb');
      const out = path.join(scratch, 'out.cif');
      await fs.writeFile(source, await corpusContent(path.join('pdb', name)));
      if (spawnSync('gemmi', ['convert', '--from=pdb', '--to=mmcif', source, out], { stdio: 'ignore' }).status !== 0) continue;
      yield { name, written: await fs.readFile(out) };
    }
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * The first `count` `.pdb` files of the corpus's pdb/ folder (in folder order) as Open Babel writes
 * them in mmCIF; files it refuses or writes empty are left out. The scratch folder goes afterwards.
 */
export async function* corpusPdbAsObabelMmcif(count: number): AsyncGenerator<{ name: string; written: Buffer }> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-obabel-mmcif-'));
  try {
    for (const name of (await fs.readdir(path.join(CORPUS, 'pdb'))).filter((n) => n.endsWith('.pdb')).slice(0, count)) {
      const out = path.join(scratch, 'out.cif');
      if (spawnSync('obabel', ['-ipdb', path.join(CORPUS, 'pdb', name), '-ommcif', '-O', out], { stdio: 'ignore', timeout: 60_000 }).status !== 0) continue;
      const written = await fs.readFile(out).catch(() => Buffer.alloc(0));
      if (written.length > 0) yield { name, written };
    }
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** The same PDB text with CRLF line ends. */
export const withCrlf = (bytes: Buffer) => Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

/** Atom records in reverse order (everything else in place): chains and residues out of order, so Mol* sorts them. */
export function atomsReversed(bytes: Buffer): Buffer {
  const lines = bytes.toString('latin1').split('\n');
  const atomAt = lines.flatMap((l, i) => (l.startsWith('ATOM  ') || l.startsWith('HETATM') ? [i] : []));
  const atoms = atomAt.map((i) => lines[i]).reverse();
  atomAt.forEach((i, k) => {
    lines[i] = atoms[k];
  });
  return Buffer.from(lines.join('\n'), 'latin1');
}
