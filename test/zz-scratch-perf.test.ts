import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, it } from 'vitest';
import { client, userFactory } from './helpers/factories.js';
import { importFiles, waitForImport } from './helpers/imports.js';
import { type Stack, startStack } from './helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { PARSE_THREADS: '2' } });
});
afterAll(() => stack?.stop());

it('perf', async () => {
  const user = await userFactory(stack.ctx);
  const api = client(stack.url, user.token);
  const projectId = (await api.post('/v1/projects', { name: 'perf' })).body.id;
  const base = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
  const files = Array.from({ length: 300 }, (_, i) => ({ name: `p/${i}.pdb`, content: Buffer.from(`REMARK 999 PERF ${i}\n${base}`, 'latin1') }));
  const t0 = Date.now();
  const accepted = await importFiles(api, projectId, files);
  const t1 = Date.now();
  const done = await waitForImport(api, accepted.body.import.id, 600_000);
  const t2 = Date.now();
  process.stderr.write(
    `size ${base.length} accept ${t1 - t0} ms, total ${t2 - t0} ms, ${(300 / ((t2 - t0) / 1000)).toFixed(1)} files/s; ${done.succeeded} stored\n`,
  );
}, 600_000);
