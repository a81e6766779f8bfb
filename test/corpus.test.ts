/**
 * A representative set of the shared corpus through the real API and workers, renamed to a wrong
 * or missing extension. The whole corpus goes through detection and the parse pool directly in
 * test/formats.corpus.test.ts; this file checks that the pipeline keeps what those give.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStructure } from '../src/formats/parse.js';
import { sniffFormat } from '../src/formats/sniff.js';
import { CORPUS, type CorpusEntry, corpusContent, hasCorpus, readManifest, trueFormats } from './helpers/corpus.js';
import { type Client, client, userFactory, waitForUpload } from './helpers/factories.js';
import { leftovers } from './helpers/leftovers.js';
import { type Stack, startStack } from './helpers/stack.js';

const hasBzip2 = (() => {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

if (!hasCorpus) process.stderr.write(`[molvault tests] corpus suite skipped: ${CORPUS} does not exist (a fresh clone has no ../shared)\n`);

/** One or more of every kind the corpus holds: multi-model, altlocs, gzip, V3000, multi-record, multi-frame, broken. */
const SAMPLE = [
  'pdb/ngl_1crn.pdb',
  'pdb/chemfiles_2hkb.pdb',
  'pdb/biopython_a_structure.pdb',
  'pdb/chemfiles_1npc.pdb.gz',
  'pdb/chemfiles_water.pdb',
  'pdb/biopython_header.pdb',
  'cif/chemfiles_4hhb.cif',
  'cif/chemfiles_1ake.cif.gz',
  'cif/gemmi_1011031.cif',
  'cif/gemmi_ATP.cif',
  'cif/pymmcif_testFileWithStopTokens.cif',
  'sdf/rdkit_pubchem-hard-set.sdf.gz',
  'sdf/ngl_v3000.sdf',
  'sdf/rdkit_v3k.1.mol',
  'mol2/chemfiles_Molecules.mol2',
  'mol2/obabel_5sun_protein.mol2',
  'xyz/chemfiles_water.multistream.7.xyz.gz',
  'xyz/chemfiles_extended.xyz',
  'bad/rdkit_sdErrors3.sdf',
  'bad/obabel_truncated-record.mol2',
  'bad/chemfiles_helium.xyz',
  'bad/pymmcif_1bna-errors.cif',
  'bad/rdkit_good_bad_good_bad.sdf',
  'bad/obabel_graphsym-nonconvergent.mol',
  'bad/rdkit_empty.sdf',
];

/** A name that lies about the format, or none at all. */
function misleadingName(file: string, i: number): string {
  const base = path.basename(file).replace(/\.(gz|bz2)$/, '');
  const stem = base.slice(0, base.lastIndexOf('.'));
  const gz = file.endsWith('.gz') ? '.gz' : '';
  const wrong = ['.xyz', '.pdb', '.sdf', '.mol2', '.cif'].find((ext) => !file.includes(`${ext.slice(1)}/`) && !base.endsWith(ext)) ?? '.txt';
  return i % 3 === 0 ? stem : `${stem}${wrong}${gz}`;
}

interface Outcome {
  name: string;
  status: number;
  state: string;
  format?: string;
  summary?: Record<string, unknown>;
  error?: { code: string; message: string };
}

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the shared corpus through the API (skipped when ../shared/corpus is absent): a representative set, misnamed',
  () => {
    let stack: Stack;
    let api: Client;
    let projectId: string;
    let ownerId: string;
    let manifest: Map<string, CorpusEntry>;
    const outcomes = new Map<string, Outcome>();

    beforeAll(async () => {
      manifest = new Map((await readManifest()).map((e) => [e.file, e]));
      stack = await startStack({ env: { QUEUE_CONCURRENCY: 'ingest=2,validate=2,snapshot=2,index=2' } });
      const owner = await userFactory(stack.ctx);
      ownerId = owner.id;
      api = client(stack.url, owner.token);
      projectId = (await api.post('/v1/projects', { name: 'corpus' })).body.id;
      const queue = SAMPLE.map((file, i) => ({ file, name: misleadingName(file, i) }));
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          for (let next = queue.shift(); next; next = queue.shift()) {
            const { file, name } = next;
            const bytes = await fs.readFile(path.join(CORPUS, file));
            const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content: bytes });
            if (response.status !== 202) {
              outcomes.set(file, { name, status: response.status, state: `http ${response.status}`, error: response.body?.error });
              continue;
            }
            const upload = await waitForUpload(api, response.body.upload.id, 120_000);
            const structure = upload.state === 'stored' ? (await api.get(`/v1/structures/${upload.structureId}`)).body : undefined;
            outcomes.set(file, {
              name,
              status: response.status,
              state: upload.state,
              format: structure?.currentVersion.format,
              summary: structure?.currentVersion.summary,
              error: upload.error,
            });
          }
        }),
      );
    }, 600_000);
    afterAll(() => stack?.stop());

    it('ends every file stored or rejected, never failed or stuck', () => {
      expect(outcomes.size).toBe(SAMPLE.length);
      for (const [file, outcome] of outcomes) {
        expect(['stored', 'rejected', 'http 415', 'http 422'], `${file}: ${JSON.stringify(outcome)}`).toContain(outcome.state);
      }
    });

    it('stores each file as its true format whatever its name says', () => {
      for (const [file, outcome] of outcomes) {
        if (outcome.state !== 'stored') continue;
        expect(trueFormats(file), `${file} named ${outcome.name}`).toContain(outcome.format);
      }
      expect([...outcomes.values()].filter((o) => o.state === 'stored').length).toBeGreaterThan(15);
    });

    it('stores the summary the reader gives, and rejects what the reader rejects with its reason', async () => {
      for (const [file, outcome] of outcomes) {
        const content = await corpusContent(file);
        const sniff = sniffFormat(content.subarray(0, 64 * 1024));
        if (!sniff.format) {
          expect(outcome.state, file).not.toBe('stored');
          expect(outcome.error?.message, file).toBe(sniff.reason);
          continue;
        }
        const direct = await parseStructure(content.toString('latin1'), sniff.format);
        if (direct.ok) {
          expect(outcome.state, file).toBe('stored');
          expect(outcome.summary, file).toEqual(JSON.parse(JSON.stringify(direct.summary)));
        } else {
          expect(outcome.state, file).toBe('rejected');
          expect(outcome.error?.message, file).toBe(direct.message);
        }
      }
    });

    it('rejects the REJECT files of bad/ and stores the ACCEPT and PARTIAL ones', () => {
      for (const [file, outcome] of outcomes) {
        const verdict = manifest.get(file)?.verdict;
        if (!verdict) continue;
        if (verdict === 'REJECT') expect(outcome.state, file).not.toBe('stored');
        else expect(outcome.state, file).toBe('stored');
      }
    });

    it('leaves one structure per stored file and nothing else behind, and the pool still serves', async () => {
      const stored = [...outcomes.values()].filter((o) => o.state === 'stored').length;
      expect(await leftovers(stack.ctx, ownerId)).toMatchObject({ structures: stored, tempFiles: 0, stagingEntries: 0 });
      const again = await api.upload(
        `/v1/projects/${projectId}/structures`,
        { name: 'after', content: await corpusContent('pdb/ngl_1crn.pdb') },
        {},
        { prefer: 'wait=30' },
      );
      expect(again.status).toBe(201);
    });

    it.skipIf(!hasBzip2)('unwraps a bzip2 copy of a multi-member gzip corpus file to all its frames (skipped when no bzip2 tool is installed)', async () => {
      const plain = await corpusContent('xyz/chemfiles_water.multistream.7.xyz.gz');
      const compressed = execFileSync('bzip2', ['-c'], { input: plain });
      const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: 'water.bz2', content: compressed }, {}, { prefer: 'wait=30' });
      expect(response.status).toBe(201);
      expect(response.body.upload.compression).toBe('bzip2');
      expect(response.body.structure.currentVersion).toMatchObject({
        format: 'xyz',
        size: plain.length,
        summary: { atoms: 29_700, models: 100, records: { count: 100, atomsPerRecord: { min: 297, max: 297 } }, firstRecord: { atoms: 297 } },
      });
    });
  },
);
