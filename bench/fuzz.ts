/**
 * Fuzzing beyond the suite's fixed run: `npm run fuzz -- --count N --seed S` sends N seeded mutants
 * of the shared corpus (and test/fixtures) through a scratch molvault's real API and workers, the
 * same mutations and checks as test/fuzz.test.ts, and prints the outcomes by mutation and every
 * finding (a 5xx, an upload failed or left unfinished, a refusal without a reason). Exit code 1
 * when there is a finding. Options: --count (default 2000), --seed (default the time),
 * --concurrency (4), --import-size (40), --upload-every (5), --max-seed-bytes (300000),
 * --timeout (seconds, 1800).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QUEUE_NAMES } from '../src/config/index.js';
import { CORPUS, hasCorpus } from '../test/helpers/corpus.js';
import { fuzzCodes, fuzzFindings, fuzzTable, fuzzThroughApi } from '../test/helpers/fuzz.js';
import { loadSeeds, makeMutants, WATER_XYZ } from '../test/helpers/mutants.js';
import { createBenchUser, createProject, startBenchStack, stopOnSignals } from './support/stack.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '2000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    concurrency: { type: 'string', default: '4' },
    'import-size': { type: 'string', default: '40' },
    'upload-every': { type: 'string', default: '5' },
    'max-seed-bytes': { type: 'string', default: '300000' },
    timeout: { type: 'string', default: '1800' },
  },
});

const count = Number(values.count);
const seed = Number(values.seed);
const dirs = [path.join(REPO_ROOT, 'test/fixtures'), ...(hasCorpus ? ['pdb', 'cif', 'sdf', 'mol2', 'xyz', 'bad'].map((d) => path.join(CORPUS, d)) : [])];
const seeds = [...(await loadSeeds(dirs, Number(values['max-seed-bytes']))), WATER_XYZ];
const mutants = makeMutants(seeds, count, seed);
console.log(`fuzz: ${count} mutants of ${seeds.length} seed files, seed ${seed}${hasCorpus ? '' : ' (no shared corpus: fixtures only)'}`);

const stack = await startBenchStack({ workerQueues: QUEUE_NAMES, env: { PARSE_TIMEOUT_MS: '20000' } });
stopOnSignals(stack.stop);
try {
  const user = await createBenchUser(stack.ctx, 100 * 1024 ** 3);
  const projectId = await createProject(stack.url, user.token, 'fuzz');
  const started = performance.now();
  const report = await fuzzThroughApi(mutants, {
    baseUrl: stack.url,
    token: user.token,
    projectId,
    uploadEvery: Number(values['upload-every']),
    importSize: Number(values['import-size']),
    concurrency: Number(values.concurrency),
    timeoutMs: Number(values.timeout) * 1000,
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(`finished in ${seconds.toFixed(1)} s (${(count / seconds).toFixed(1)} mutants/s)`);
  console.table(fuzzTable(report));
  console.table(fuzzCodes(report));
  const findings = fuzzFindings(report);
  for (const finding of findings) console.log(`FINDING ${finding}`);
  console.log(`${findings.length} finding(s); replay with: npm run fuzz -- --count ${count} --seed ${seed}`);
  process.exitCode = findings.length > 0 ? 1 : 0;
} finally {
  await stack.stop();
}
