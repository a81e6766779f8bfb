import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, it } from 'vitest';
import { client, userFactory, waitForUpload } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { PARSE_THREADS: '2' } });
});
afterAll(() => stack?.stop());

it('perf single uploads', async () => {
  const user = await userFactory(stack.ctx);
  const api = client(stack.url, user.token);
  const projectId = (await api.post('/v1/projects', { name: 'perf' })).body.id;
  const base = await fs.readFile(path.join(import.meta.dirname, 'fixtures', 'ngl_1crn.pdb'), 'latin1');
  const n = 300;
  const t0 = Date.now();
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        const r = await api.upload(`/v1/projects/${projectId}/structures`, { name: `${i}.pdb`, content: `REMARK 999 PERF ${i}\n${base}` });
        ids.push(r.body.upload.id);
      }
    }),
  );
  for (const id of ids) await waitForUpload(api, id, 600_000);
  const t2 = Date.now();
  process.stderr.write(`single uploads: total ${t2 - t0} ms, ${(n / ((t2 - t0) / 1000)).toFixed(1)} files/s\n`);
}, 600_000);
