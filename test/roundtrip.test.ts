import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { parseMol2 } from 'molstar/lib/mol-io/reader/mol2/parser.js';
import { parsePDB } from 'molstar/lib/mol-io/reader/pdb/parser.js';
import { parseSdf } from 'molstar/lib/mol-io/reader/sdf/parser.js';
import type { Trajectory } from 'molstar/lib/mol-model/structure.js';
import { trajectoryFromPDB } from 'molstar/lib/mol-model-formats/structure/pdb.js';
import { Task } from 'molstar/lib/mol-task/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { EngineCatalog, EnginePool } from '../src/engines/pool.js';
import { EngineError } from '../src/engines/process.js';
import { normalisePdbModels, parseStructure, readTrajectory } from '../src/formats/parse.js';
import type { Format } from '../src/formats/types.js';
import { createLogger } from '../src/lib/logger.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CORPUS = path.resolve(here, '../../shared/corpus');
const hasCorpus = existsSync(CORPUS);
/** Bounds the suite's time: larger files are left to bench:convert. */
const MAX_BYTES = 1024 * 1024;

type Triples = number[];

/** Coordinates of every atom of the first model (PDB, mmCIF) or of every record (SDF, MOL2), read with Mol*. */
async function coordinates(text: string, format: Format): Promise<Triples> {
  const out: Triples = [];
  const fromColumns = (count: number, x: { value(i: number): number }, y: typeof x, z: typeof x) => {
    for (let i = 0; i < count; i++) out.push(x.value(i), y.value(i), z.value(i));
  };
  if (format === 'pdb' || format === 'cif') {
    let trajectory: Trajectory;
    if (format === 'pdb') {
      const pdb = await parsePDB(normalisePdbModels(text, [])).run();
      if (pdb.isError) throw new Error(pdb.message);
      trajectory = await trajectoryFromPDB(pdb.result).run();
    } else {
      // Through molvault's own reader: it reads what the engines write (gemmi's mmCIF with entities it leaves undescribed).
      const read = await readTrajectory(text, 'cif', [], false);
      if (!('trajectory' in read)) throw new Error('the mmCIF was read without a model');
      trajectory = read.trajectory;
    }
    const model = await Task.resolveInContext(trajectory.getFrameAtIndex(0));
    const { x, y, z } = model.atomicConformation;
    for (let i = 0; i < x.length; i++) out.push(x[i], y[i], z[i]);
  } else if (format === 'sdf') {
    // Record by record: one unusual record must not hide the ones after it.
    for (const record of sdfRecords(text)) {
      const sdf = await parseSdf(record).run();
      if (sdf.isError) throw new Error(sdf.message);
      for (const { molFile } of sdf.result.compounds) fromColumns(molFile.atoms.count, molFile.atoms.x, molFile.atoms.y, molFile.atoms.z);
    }
  } else if (format === 'mol2') {
    const mol2 = await parseMol2(text, 'roundtrip').run();
    if (mol2.isError) throw new Error(mol2.message);
    for (const { atoms } of mol2.result.structures) fromColumns(atoms.count, atoms.x, atoms.y, atoms.z);
  }
  return out;
}

/** The records of an SDF file, split at its `$$$$` lines. */
function sdfRecords(text: string): string[] {
  return text
    .split(/^\$\$\$\$[^\n]*\n?/m)
    .filter((record) => /\S/.test(record))
    .map((record) => `${record}$$$$\n`);
}

/**
 * Largest coordinate difference between the two atom sets, matched in sorted order (engines may
 * regroup atoms, e.g. gemmi puts a chain's ligands and waters after its polymer); Infinity when
 * the counts differ.
 */
function maxDeviation(a: Triples, b: Triples, decimals: number): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  const sorted = (t: Triples) => {
    const scale = 10 ** decimals;
    const atoms: [number, number, number][] = [];
    for (let i = 0; i < t.length; i += 3) atoms.push([Math.round(t[i] * scale), Math.round(t[i + 1] * scale), Math.round(t[i + 2] * scale)]);
    return atoms.sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2]);
  };
  const sa = sorted(a);
  const sb = sorted(b);
  let max = 0;
  for (let i = 0; i < sa.length; i++) for (let k = 0; k < 3; k++) max = Math.max(max, Math.abs(sa[i][k] - sb[i][k]) / 10 ** decimals);
  return max;
}

interface Outcome {
  file: string;
  result: 'kept' | 'not stored' | 'no engine' | 'engine refused' | 'differs';
  why?: string;
}

/**
 * PDB → mmCIF → PDB (gemmi) and SDF → MOL2 → SDF (Open Babel) through molvault's engine pool, on the
 * shared corpus. A round trip must keep the atom count, model count and every coordinate to the
 * precision of the formats (PDB 3 decimals, SDF/MOL2 4). Files molvault would not store are
 * skipped; files an engine cannot read are reported with the engine's reason.
 */
describe.skipIf(!hasCorpus)('round trips through the engines (skipped when ../shared/corpus is absent)', () => {
  let tmp: string;
  let pool: EnginePool;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-roundtrip-'));
    const settings = { ...loadConfig({ DATA_DIR: tmp }).engines, concurrency: 2 };
    pool = new EnginePool(await EngineCatalog.detect(settings), settings, createLogger('silent'));
  });

  afterAll(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  async function roundTrip(file: string, format: Format, via: Format, decimals: number): Promise<Outcome> {
    const name = path.basename(file);
    let bytes = await fs.readFile(file);
    if (name.endsWith('.gz')) bytes = gunzipSync(bytes);
    const text = bytes.toString('latin1');
    const source = await parseStructure(text, format);
    if (!source.ok) return { file: name, result: 'not stored', why: source.message };
    const input = path.join(tmp, `input-${name.replace(/\.gz$/, '')}`);
    await fs.writeFile(input, bytes);
    const plan = pool.catalog.plan({ format, dialect: source.summary.dialect }, via);
    if (!plan.ok) return { file: name, result: 'no engine', why: plan.message };
    try {
      const middle = path.join(tmp, `middle-${name}.${via}`);
      await pool.convert({ path: input, format, dialect: source.summary.dialect }, via, (output) => fs.copyFile(output, middle));
      const back = await pool.convert({ path: middle, format: via }, format, (output) => fs.readFile(output, 'latin1'));
      const again = await parseStructure(back, format);
      if (!again.ok) return { file: name, result: 'differs', why: `the round-tripped file does not read: ${again.message}` };
      // Records are counted at their `$$$$` lines: Mol*'s SDF reader stops early on some files.
      const records = (t: string) => (format === 'sdf' ? `, ${sdfRecords(t).length} records` : '');
      const counts = (s: typeof source.summary, t: string) =>
        `${s.atoms} atoms in the first ${format === 'sdf' ? 'record' : 'model'}, ${s.models} models${records(t)}`;
      if (counts(source.summary, text) !== counts(again.summary, back)) {
        return { file: name, result: 'differs', why: `${counts(source.summary, text)} became ${counts(again.summary, back)}` };
      }
      const [before, after] = [await coordinates(text, format), await coordinates(back, format)];
      const deviation = maxDeviation(before, after, decimals);
      if (deviation === Number.POSITIVE_INFINITY) return { file: name, result: 'differs', why: `${before.length / 3} atoms in all became ${after.length / 3}` };
      // Both formats keep `decimals` places; a writer rounding from binary floats may be off by one in the last place.
      if (deviation > 1.01 / 10 ** decimals) return { file: name, result: 'differs', why: `coordinates moved by up to ${deviation.toFixed(decimals)} Å` };
      return { file: name, result: 'kept' };
    } catch (error) {
      if (error instanceof EngineError) return { file: name, result: 'engine refused', why: error.message };
      throw error;
    }
  }

  async function runCorpus(folder: string, format: Format, via: Format, decimals: number) {
    const dir = path.join(CORPUS, folder);
    const outcomes: Outcome[] = [];
    for (const entry of (await fs.readdir(dir)).sort()) {
      const file = path.join(dir, entry);
      if ((await fs.stat(file)).size > MAX_BYTES) continue;
      outcomes.push(await roundTrip(file, format, via, decimals));
    }
    const report = outcomes.filter((o) => o.result !== 'kept').map((o) => `  ${o.file}: ${o.result}: ${o.why}`);
    const kept = outcomes.filter((o) => o.result === 'kept').length;
    console.log(
      `${format} → ${via} → ${format}: ${kept} of ${outcomes.length} files kept every atom and coordinate${report.length ? `; the others:\n${report.join('\n')}` : ''}`,
    );
    return outcomes;
  }

  it('PDB → mmCIF → PDB keeps atom and model counts and coordinates (3 decimals)', async () => {
    const outcomes = await runCorpus('pdb', 'pdb', 'cif', 3);
    expect(outcomes.filter((o) => o.result === 'kept').length).toBeGreaterThan(60);
    expect(unexplained(outcomes, KNOWN_PDB_EXCEPTIONS)).toEqual({});
  }, 600_000);

  it('SDF → MOL2 → SDF keeps atom and molecule counts and coordinates (4 decimals)', async () => {
    const outcomes = await runCorpus('sdf', 'sdf', 'mol2', 4);
    expect(outcomes.filter((o) => o.result === 'kept').length).toBeGreaterThan(30);
    expect(unexplained(outcomes, KNOWN_SDF_EXCEPTIONS)).toEqual({});
  }, 600_000);

  it('mmCIF → PDB → mmCIF keeps them too, for the macromolecular CIF files', async () => {
    const outcomes = await runCorpus('cif', 'cif', 'pdb', 3);
    expect(outcomes.filter((o) => o.result === 'kept').length).toBeGreaterThan(30);
    expect(unexplained(outcomes, KNOWN_CIF_EXCEPTIONS)).toEqual({});
  }, 600_000);
});

/**
 * Outcomes other than "kept" or "not stored" that differ from this list (a new failure, or a
 * listed file that now round-trips): each listed file with what happens and why.
 */
function unexplained(outcomes: Outcome[], known: Record<string, string>): Record<string, string> {
  const surprises: Record<string, string> = {};
  for (const o of outcomes) {
    if (o.result === 'kept' || o.result === 'not stored' || o.result === 'no engine') {
      if (known[o.file] && o.result === 'kept') surprises[o.file] = 'round-trips now: remove it from the known exceptions';
      continue;
    }
    if (!known[o.file]) surprises[o.file] = `${o.result}: ${o.why}`;
  }
  return surprises;
}

/** Where a round trip does not keep everything, and why (checked on the corpus with gemmi 0.5.7 and Open Babel 3.1.1). */
const KNOWN_PDB_EXCEPTIONS: Record<string, string> = {
  'chemfiles_end-endmdl.pdb': 'two models each closed by END: gemmi stops reading at the first END, so the second model is lost',
  'chemfiles_water.pdb':
    '100 frames separated by END without MODEL records: molvault (Mol*) reads them as one 29,700-atom model, gemmi stops at the first END (297 atoms)',
  'chemfiles_model.pdb': 'gemmi refuses the file: "duplicate MODEL number: 0"',
};

const KNOWN_SDF_EXCEPTIONS: Record<string, string> = {
  'ngl_v3000.sdf': 'Open Babel 3.1.1 reads no molecule from this V3000 file ("0 molecules converted")',
  'rdkit_v3k.3.mol': 'Open Babel 3.1.1 reads no molecule from this V3000 file ("0 molecules converted")',
  'obabel_alias.mol': 'Open Babel expands the atom aliases (A lines) into real atoms: 8 atoms become 12',
};

const KNOWN_CIF_EXCEPTIONS: Record<string, string> = {
  'pymmcif_Test2.cif': 'gemmi aborts (std::out_of_range) on this test file',
};
