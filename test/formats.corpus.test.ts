/**
 * The whole shared corpus through detection, the piscina parse pool and the summaries, without
 * HTTP (test/corpus.test.ts sends a representative set through the API).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CIF } from 'molstar/lib/mol-io/reader/cif.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { parseStructure } from '../src/formats/parse.js';
import { sniffFormat } from '../src/formats/sniff.js';
import { cifAtomTable } from '../src/formats/summarizeCif.js';
import type { Format, ParseOutcome } from '../src/formats/types.js';
import { CpuPool } from '../src/pool/cpuPool.js';
import { resolveFormat } from '../src/services/upload/format.js';
import { CORPUS, CORPUS_FOLDERS, type CorpusEntry, corpusContent, feature, hasCorpus, readManifest, trueFormats } from './helpers/corpus.js';

if (!hasCorpus) process.stderr.write(`[molvault tests] corpus format suite skipped: ${CORPUS} does not exist (a fresh clone has no ../shared)\n`);

/** Names a user might give the file: a wrong extension for its format, none at all, or a different case. */
const WRONG_NAMES: Record<string, string[]> = {
  pdb: ['structure.xyz', 'structure', 'STRUCTURE.TXT'],
  cif: ['structure.pdb', 'structure', 'structure.dat'],
  sdf: ['ligand.mol2', 'ligand', 'ligand.pdb'],
  mol: ['ligand.mol2', 'ligand', 'ligand.pdb'],
  mol2: ['ligand.sdf', 'ligand', 'ligand.cif'],
  xyz: ['frames.pdb', 'frames', 'frames.sdf'],
};

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the shared corpus through detection, the parse pool and the summaries (skipped when ../shared/corpus is absent)',
  () => {
    const config = loadConfig({ DATA_DIR: os.tmpdir(), PARSE_THREADS: '2', PARSE_TIMEOUT_MS: '60000' });
    let pool: CpuPool;
    let scratch: string;
    let manifest: CorpusEntry[];
    const outcomes = new Map<string, { detected?: Format; sniffReason?: string; outcome?: ParseOutcome; error?: string }>();

    beforeAll(async () => {
      manifest = (await readManifest()).filter((e) => (CORPUS_FOLDERS as readonly string[]).includes(e.file.split('/')[0]) || e.file.startsWith('bad/'));
      scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-corpus-'));
      pool = new CpuPool(config.parseThreads, config.parseTimeoutMs, config.parseMaxMemoryMb);
      const queue = [...manifest];
      await Promise.all(
        Array.from({ length: 2 }, async () => {
          for (let entry = queue.shift(); entry; entry = queue.shift()) {
            const content = await corpusContent(entry.file);
            const sniff = sniffFormat(content.subarray(0, 64 * 1024));
            if (!sniff.format) {
              outcomes.set(entry.file, { sniffReason: sniff.reason });
              continue;
            }
            const file = path.join(scratch, entry.file.replaceAll('/', '_'));
            await fs.writeFile(file, content);
            try {
              outcomes.set(entry.file, { detected: sniff.format, outcome: await pool.parse({ path: file, format: sniff.format }) });
            } catch (error) {
              outcomes.set(entry.file, { detected: sniff.format, error: String(error) });
            }
          }
        }),
      );
    }, 600_000);

    afterAll(async () => {
      await pool?.close();
      if (scratch) await fs.rm(scratch, { recursive: true, force: true });
    });

    it('detects every structure file as its true format, whatever its name says', () => {
      const wrong: string[] = [];
      for (const entry of manifest.filter((e) => !e.file.startsWith('bad/'))) {
        const { detected, sniffReason } = outcomes.get(entry.file) ?? {};
        const truth = trueFormats(entry.file);
        if (!detected || !truth.includes(detected)) {
          wrong.push(`${entry.file}: detected ${detected ?? `nothing (${sniffReason})`}`);
          continue;
        }
        for (const name of [...WRONG_NAMES[detected], path.basename(entry.file)]) {
          const decision = resolveFormat(name, null, detected);
          if (!('format' in decision) || !truth.includes(decision.format)) wrong.push(`${entry.file} named ${name}: ${JSON.stringify(decision)}`);
        }
      }
      expect(wrong).toEqual([]);
      expect(manifest.filter((e) => !e.file.startsWith('bad/')).length).toBeGreaterThan(200);
    });

    it('detects the malformed files as the format they pretend to be, unless they are empty', () => {
      const wrong: string[] = [];
      for (const entry of manifest.filter((e) => e.file.startsWith('bad/'))) {
        const { detected, sniffReason } = outcomes.get(entry.file) ?? {};
        if (detected === undefined && /empty|blank/i.test(sniffReason ?? '')) continue;
        if (!detected || !trueFormats(entry.file).includes(detected)) wrong.push(`${entry.file}: ${detected ?? sniffReason}`);
      }
      expect(wrong).toEqual([]);
    });

    it('ends every structure file stored with a summary or rejected with a reason that names the problem, within the parse timeout, and no worker dies', () => {
      const bad: string[] = [];
      for (const entry of manifest) {
        const { outcome, error, sniffReason } = outcomes.get(entry.file) ?? {};
        if (error) bad.push(`${entry.file}: the pool threw ${error}`);
        else if (!outcome) expect(sniffReason, entry.file).toMatch(/\w+ \w+ \w+/);
        else if (outcome.ok) {
          expect(outcome.summary.atoms, entry.file).toBeGreaterThan(0);
          expect(outcome.report.parseMs, entry.file).toBeLessThan(config.parseTimeoutMs);
        } else {
          expect(outcome.message, entry.file).toMatch(/\w+ \w+ \w+/);
          expect(outcome.code, entry.file).toMatch(/^[a-z_]+$/);
          expect([415, 422], entry.file).toContain(outcome.status);
          expect(outcome.report.parseMs, entry.file).toBeLessThan(config.parseTimeoutMs);
        }
      }
      expect(bad).toEqual([]);
      const stored = manifest.filter((e) => !e.file.startsWith('bad/') && outcomes.get(e.file)?.outcome?.ok);
      const refused = manifest.filter((e) => !e.file.startsWith('bad/') && !outcomes.get(e.file)?.outcome?.ok);
      process.stderr.write(
        `[molvault tests] corpus formats: ${stored.length} stored, ${refused.length} refused\n${refused
          .map((e) => {
            const o = outcomes.get(e.file);
            return `  ${e.file}: ${o?.outcome && !o.outcome.ok ? o.outcome.message : o?.sniffReason}`;
          })
          .join('\n')}\n`,
      );
      // Every small-molecule file in the corpus is sound; the refused PDB/mmCIF files hold no coordinates.
      for (const entry of refused) {
        const o = outcomes.get(entry.file)?.outcome;
        expect(entry.file.split('/')[0], entry.file).toMatch(/^(pdb|cif)$/);
        expect(o && !o.ok ? o.message : '', entry.file).toMatch(/no atoms|no atom coordinates|reader stopped/);
      }
      expect(stored.length / (stored.length + refused.length)).toBeGreaterThan(0.93);
    });

    it('rejects every REJECT file in bad/ with a reason and stores every ACCEPT file', () => {
      const wrong: string[] = [];
      const verdicts = manifest.filter((e) => e.verdict === 'REJECT' || e.verdict === 'ACCEPT');
      for (const entry of verdicts) {
        const { outcome, sniffReason } = outcomes.get(entry.file) ?? {};
        const accepted = outcome?.ok === true;
        if (entry.verdict === 'ACCEPT' && !accepted)
          wrong.push(`${entry.file} (ACCEPT) was refused: ${outcome && !outcome.ok ? outcome.message : sniffReason}`);
        if (entry.verdict === 'REJECT' && accepted) wrong.push(`${entry.file} (REJECT) was stored`);
      }
      expect(wrong).toEqual([]);
      expect(verdicts.length).toBeGreaterThan(20);
    });

    it('keeps the sound records of a partly broken multi-record file and says which one it skipped', () => {
      const partial = outcomes.get('bad/rdkit_good_bad_good_bad.sdf')?.outcome;
      expect(partial?.ok).toBe(true);
      if (!partial?.ok) return;
      expect(partial.summary.molecules).toBe(3);
      expect(partial.report.warnings).toEqual([expect.objectContaining({ code: 'record_skipped_count_mismatch', line: expect.any(Number) })]);
    });

    it('counts atoms, models and molecules as SOURCES.md records them', () => {
      const mismatches: string[] = [];
      let compared = 0;
      for (const entry of manifest.filter((e) => !e.file.startsWith('bad/'))) {
        const outcome = outcomes.get(entry.file)?.outcome;
        if (!outcome?.ok) continue;
        const { summary } = outcome;
        const expected: Record<string, number | undefined> = {};
        const gemmi = /gemmi:OK\((\d+) model\(s\), (\d+) sites in model 1\)/.exec(entry.features);
        if (gemmi) {
          expected.atoms = Number(gemmi[2]);
          // Both counts miss models in known ways: gemmi stops at the first END, the text count
          // misses bare MODEL lines; a reader that finds either kind finds the larger number.
          const endFrames = /(\d+) frames separated by END/.exec(entry.notes);
          expected.models = Math.max(feature(entry.features, 'models') ?? 0, endFrames ? Number(endFrames[1]) : 0, Number(gemmi[1]));
        }
        if (entry.file.startsWith('xyz/')) {
          expected.atoms = feature(entry.features, 'natoms');
          expected.models = feature(entry.features, 'frames');
        }
        if (entry.file.startsWith('mol2/')) expected.molecules = feature(entry.features, 'molecules');
        if (entry.file.startsWith('sdf/')) {
          const converted = /obabel:(\d+) mol converted/.exec(entry.features);
          const v3000 = feature(entry.features, 'V3000 blocks');
          expected.molecules = converted && Number(converted[1]) > 0 ? Number(converted[1]) : v3000;
        }
        for (const [key, value] of Object.entries(expected)) {
          if (value === undefined) continue;
          compared++;
          // A multi-frame XYZ's atoms count every frame; SOURCES.md counts one frame's.
          const actual = key === 'atoms' && summary.firstRecord ? summary.firstRecord.atoms : summary[key as 'atoms' | 'models' | 'molecules'];
          if (actual !== value) mismatches.push(`${entry.file}: ${key} ${actual}, SOURCES.md ${value}`);
        }
      }
      expect(mismatches).toEqual([]);
      expect(compared).toBeGreaterThan(250);
    });

    it('gives the same answer for every mmCIF file whether it is summarised from a Mol* model or straight from the tokens (the large-file path)', async () => {
      const differing: string[] = [];
      let direct = 0;
      for (const entry of manifest.filter((e) => e.file.startsWith('cif/'))) {
        const text = (await corpusContent(entry.file)).toString('latin1');
        const viaModel = await parseStructure(text, 'cif', { directCif: false });
        const viaTokens = await parseStructure(text, 'cif', { directCif: true });
        const comparable = (o: ParseOutcome) => JSON.stringify({ ...o, report: { ...o.report, parseMs: 0 } });
        if (comparable(viaModel) !== comparable(viaTokens)) differing.push(entry.file);
        const tokens = await CIF.parse(text).run();
        if (!tokens.isError && tokens.result.blocks[0] && cifAtomTable(tokens.result.blocks[0])) direct++;
      }
      expect(differing).toEqual([]);
      expect(direct).toBeGreaterThan(30);
    });

    it('summarises every stored file with composition, weight, bounds and kind', () => {
      for (const [file, { outcome }] of outcomes) {
        if (!outcome?.ok) continue;
        const { summary } = outcome;
        // A file of records with several formulas has none of its own: its first record's, and the list.
        if (summary.formula === undefined) expect(summary.records?.distinctFormulas, file).toBeGreaterThan(1);
        expect(summary.formula ?? summary.firstRecord?.formula, file).toMatch(/^[A-Z]/);
        expect(summary.molecularWeight ?? summary.firstRecord?.molecularWeight, file).toBeGreaterThan(0);
        expect(summary.bounds?.min.every(Number.isFinite), file).toBe(true);
        expect(['macromolecule', 'small-molecule'], file).toContain(outcome.kind);
        if (outcome.format === 'sdf' || outcome.format === 'mol' || outcome.format === 'mol2') {
          expect(summary.bonds, file).toBeGreaterThanOrEqual(0);
          expect(summary.molecules, file).toBeGreaterThan(0);
        }
      }
    });
  },
);
