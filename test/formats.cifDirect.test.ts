/**
 * The mmCIF summary read straight from the tokens (summarizeCif.ts, used for large files) against
 * the summary of Mol*'s model, on mmCIF that gemmi writes from the corpus's PDB files: gemmi leaves
 * label_seq_id empty for chains without SEQRES and auth_asym_id empty for blank chains, which Mol*
 * fills from the counterpart columns; on mmCIF Open Babel writes; on the corpus's mmCIF with CRLF
 * line ends. formats.corpus.test.ts compares both on the corpus's mmCIF as they are.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseStructure } from '../src/formats/parse.js';
import type { ParseOutcome } from '../src/formats/types.js';
import { CORPUS, corpusPdbAsGemmiMmcif, corpusPdbAsObabelMmcif, hasCorpus } from './helpers/corpus.js';

const gemmi = spawnSync('gemmi', ['--version']).status === 0;
const comparable = (o: ParseOutcome) => ({ ...o, report: { ...o.report, parseMs: 0 } });

describe.skipIf(!hasCorpus || !gemmi /* skipped when ../shared/corpus is absent or the gemmi CLI is not installed */)(
  'mmCIF summarised from tokens and from the model agree (skipped without ../shared/corpus or the gemmi CLI)',
  () => {
    it('on mmCIF written by gemmi from every PDB file of the corpus', async () => {
      let compared = 0;
      for await (const { name, written } of corpusPdbAsGemmiMmcif()) {
        const text = written.toString('latin1');
        const viaModel = await parseStructure(text, 'cif', { directCif: false });
        const viaTokens = await parseStructure(text, 'cif', { directCif: true });
        expect(comparable(viaTokens), name).toEqual(comparable(viaModel));
        compared++;
      }
      expect(compared).toBeGreaterThan(50);
    }, 300_000);

    it('on the corpus mmCIF files with CRLF line ends', async () => {
      let compared = 0;
      for (const name of (await fs.readdir(path.join(CORPUS, 'cif'))).sort()) {
        let bytes = await fs.readFile(path.join(CORPUS, 'cif', name));
        if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
        const text = bytes.toString('latin1').replace(/\r?\n/g, '\r\n');
        const viaModel = await parseStructure(text, 'cif', { directCif: false });
        const viaTokens = await parseStructure(text, 'cif', { directCif: true });
        expect(comparable(viaTokens), name).toEqual(comparable(viaModel));
        compared++;
      }
      expect(compared).toBeGreaterThan(50);
    }, 300_000);

    it.skipIf(spawnSync('obabel', ['-V']).status !== 0 /* skipped when the Open Babel CLI is not installed */)(
      'on mmCIF written by Open Babel (skipped without the obabel CLI)',
      async () => {
        let compared = 0;
        for await (const { name, written } of corpusPdbAsObabelMmcif(30)) {
          const text = written.toString('latin1');
          const viaModel = await parseStructure(text, 'cif', { directCif: false });
          const viaTokens = await parseStructure(text, 'cif', { directCif: true });
          expect(comparable(viaTokens), name).toEqual(comparable(viaModel));
          compared++;
        }
        expect(compared).toBeGreaterThan(20);
      },
      300_000,
    );
  },
);
