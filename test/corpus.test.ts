import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CIF } from 'molstar/lib/mol-io/reader/cif.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, client, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const CORPUS = path.resolve(import.meta.dirname, '../../shared/corpus');
const hasCorpus = await fs
  .access(CORPUS)
  .then(() => true)
  .catch(() => false);
if (!hasCorpus) process.stderr.write(`[molvault tests] corpus suite skipped: ${CORPUS} does not exist (a fresh clone has no ../shared)\n`);

/** ATOM/HETATM records before the first ENDMDL: the first model's atoms, counted straight from the text. */
function pdbFirstModelAtoms(text: string): number {
  let count = 0;
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('ENDMDL')) break;
    if (line.startsWith('ATOM  ') || line.startsWith('HETATM')) count++;
  }
  return count;
}

/**
 * `_atom_site` rows of the first model (by pdbx_PDB_model_num), read with the CIF tokenizer alone;
 * for small-molecule CIF the `_atom_site_` loop rows, for a chemical component its `_chem_comp_atom` rows.
 */
async function cifFirstModelAtoms(text: string): Promise<number> {
  const parsed = await CIF.parse(text).run();
  if (parsed.isError) return -1;
  const block = parsed.result.blocks.find(
    (b) => b.categories.atom_site || b.categories.atom_site_fract_x || b.categories.atom_site_Cartn_x || b.categories.chem_comp_atom,
  );
  const sites = block?.categories.atom_site;
  if (!sites) {
    const other = block?.categories.atom_site_fract_x ?? block?.categories.atom_site_Cartn_x ?? block?.categories.chem_comp_atom;
    return other?.rowCount ?? 0;
  }
  const model = sites.getField('pdbx_PDB_model_num');
  if (!model) return sites.rowCount;
  const first = model.str(0);
  let count = 0;
  for (let i = 0; i < sites.rowCount; i++) if (model.str(i) === first) count++;
  return count;
}

async function corpusFiles(folder: string): Promise<string[]> {
  return (await fs.readdir(path.join(CORPUS, folder))).sort().map((f) => path.join(folder, f));
}

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the shared corpus (skipped when ../shared/corpus is absent): every PDB and mmCIF file is stored with the right atom count or rejected with a reason',
  () => {
    let stack: Stack;
    let api: Client;
    let projectId: string;
    const outcomes = new Map<string, { state: string; atoms?: number; error?: { code: string; message: string } }>();

    beforeAll(async () => {
      stack = await startStack({ env: { QUEUE_CONCURRENCY: 'ingest=4,validate=2,snapshot=4,index=4' } });
      api = client(stack.url, (await userFactory(stack.ctx)).token);
      projectId = (await api.post('/v1/projects', { name: 'corpus' })).body.id;
      const files = [...(await corpusFiles('pdb')), ...(await corpusFiles('cif'))];
      const queue = [...files];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let file = queue.shift(); file; file = queue.shift()) {
            const bytes = await fs.readFile(path.join(CORPUS, file));
            const response = await api.upload(`/v1/projects/${projectId}/structures`, { name: path.basename(file), content: bytes });
            if (response.status !== 202) {
              outcomes.set(file, { state: `http ${response.status}`, error: response.body?.error });
              continue;
            }
            const upload = await waitForUpload(api, response.body.upload.id, 120_000);
            const structure = upload.state === 'stored' ? (await api.get(`/v1/structures/${upload.structureId}`)).body : undefined;
            outcomes.set(file, { state: upload.state, atoms: structure?.currentVersion.summary.atoms, error: upload.error });
          }
        }),
      );
    }, 600_000);
    afterAll(() => stack?.stop());

    it('ends every file stored or rejected, never failed or stuck', () => {
      expect(outcomes.size).toBeGreaterThan(100);
      for (const [file, outcome] of outcomes) {
        expect(['stored', 'rejected', 'http 415', 'http 422'], `${file}: ${JSON.stringify(outcome)}`).toContain(outcome.state);
      }
    });

    it('gives every rejection a reason that names the problem', () => {
      for (const [file, outcome] of outcomes) {
        if (outcome.state === 'stored') continue;
        expect(outcome.error?.message, file).toMatch(/\w+ \w+ \w+/);
        expect(outcome.error?.code, file).toMatch(/^[a-z_]+$/);
      }
    });

    it('counts the atoms of the first model as the file has them', async () => {
      const mismatches: string[] = [];
      for (const [file, outcome] of outcomes) {
        if (outcome.state !== 'stored') continue;
        let bytes = await fs.readFile(path.join(CORPUS, file));
        if (file.endsWith('.gz')) bytes = gunzipSync(bytes);
        const text = bytes.toString('latin1');
        const expected = file.startsWith('pdb/') ? pdbFirstModelAtoms(text) : await cifFirstModelAtoms(text);
        if (expected !== outcome.atoms) mismatches.push(`${file}: summary ${outcome.atoms}, file ${expected}`);
      }
      expect(mismatches).toEqual([]);
    });

    it('stores the large majority of real files', () => {
      const stored = [...outcomes.values()].filter((o) => o.state === 'stored').length;
      const rejected = [...outcomes].filter(([, o]) => o.state !== 'stored').map(([f, o]) => `${f}: ${o.error?.message}`);
      process.stderr.write(`[molvault tests] corpus: ${stored} stored, ${rejected.length} rejected\n${rejected.map((r) => `  ${r}`).join('\n')}\n`);
      expect(stored / outcomes.size).toBeGreaterThan(0.8);
    });
  },
);
