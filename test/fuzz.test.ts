import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS, hasCorpus } from './helpers/corpus.js';
import { client, userFactory } from './helpers/factories.js';
import { fuzzCodes, fuzzFindings, fuzzTable, fuzzThroughApi } from './helpers/fuzz.js';
import { loadSeeds, MUTATION_NAMES, makeMutants, WATER_XYZ } from './helpers/mutants.js';
import { type Stack, startStack } from './helpers/stack.js';

/** Mutants per run, and the seed: fixed, so a failure replays (`npm run fuzz -- --count N --seed S` runs more). */
const COUNT = 520;
const SEED = 22;
/** Seed files up to this size once unpacked, so 500 mutants stay quick. */
const MAX_SEED_BYTES = 300_000;

const corpusNote = hasCorpus ? '' : ' (the shared corpus is absent: mutants of test/fixtures only)';

describe(`${COUNT} seeded mutants of corpus files through the real API and workers${corpusNote}`, () => {
  let stack: Stack;
  beforeAll(async () => {
    // A parse that hangs is cut off inside the test's time and the test fails on it; the limit is the
    // stack's usual one, so a thread starved of CPU on a busy machine is not taken for a hang.
    stack = await startStack({ env: { PARSE_TIMEOUT_MS: '60000', PARSE_THREADS: '2' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('stores or refuses every mutant with a reason: no 5xx, no failed or unfinished upload, no crashed job', async () => {
    const dirs = [
      path.join(import.meta.dirname, 'fixtures'),
      ...(hasCorpus ? ['pdb', 'cif', 'sdf', 'mol2', 'xyz', 'bad'].map((d) => path.join(CORPUS, d)) : []),
    ];
    const seeds = [...(await loadSeeds(dirs, MAX_SEED_BYTES)), WATER_XYZ];
    expect(new Set(seeds.map((s) => s.format))).toEqual(
      new Set(['pdb', 'cif', 'sdf', 'mol', 'mol2', 'xyz'].filter((f) => f !== 'mol' || seeds.some((s) => s.format === 'mol'))),
    );
    const mutants = makeMutants(seeds, COUNT, SEED);
    expect(new Set(mutants.map((m) => m.mutation))).toEqual(new Set(MUTATION_NAMES));

    const user = await userFactory(stack.ctx, { quotaBytes: 50 * 1024 ** 3 });
    const projectId = (await client(stack.url, user.token).post('/v1/projects', { name: 'fuzz' })).body.id;
    const report = await fuzzThroughApi(mutants, {
      baseUrl: stack.url,
      token: user.token,
      projectId,
      uploadEvery: 5,
      importSize: 40,
      concurrency: 4,
      timeoutMs: 480_000,
    });
    const findings = fuzzFindings(report);
    expect(findings, JSON.stringify(fuzzCodes(report))).toEqual([]);
    expect(report.outcomes).toHaveLength(COUNT);
    // Both ends are exercised: some mutants survive as structures, many are refused.
    const states = new Set(report.outcomes.map((o) => o.state));
    expect(states).toContain('stored');
    expect(states).toContain('rejected');
    // No job crashed: a refused file fails its job on the first attempt (UnrecoverableError) with its
    // reason; a job that failed after retries, or is still retrying, met an error of ours.
    for (const queue of Object.values(stack.ctx.queues)) {
      const failed = await queue.getJobs(['failed']);
      expect(
        failed.filter((job) => job.attemptsMade > 1 || !job.failedReason).map((job) => `${job.id}: ${job.failedReason}`),
        queue.name,
      ).toEqual([]);
      // Waiting to retry: an error of ours. (A schedule's next run waits as a delayed job too: not counted.)
      const retrying = (await queue.getJobs(['delayed'])).filter((job) => !job.repeatJobKey);
      expect(
        retrying.map((job) => `${job.id}: ${job.failedReason}`),
        queue.name,
      ).toEqual([]);
    }
    console.info(`fuzz: ${COUNT} mutants, seed ${SEED}:`, JSON.stringify(fuzzTable(report)), JSON.stringify(fuzzCodes(report)));
  }, 600_000);
});
