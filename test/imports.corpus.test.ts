/**
 * The whole shared corpus through a bulk import, twice over: as many multipart files (names are
 * the corpus paths) and as a .tar.gz built here; then each again, which must store nothing new.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS, hasCorpus, readManifest } from './helpers/corpus.js';
import { type Client, client, userFactory } from './helpers/factories.js';
import { buildTar, type ImportFile, importArchive, importFiles, waitForImport } from './helpers/imports.js';
import { type Stack, startStack } from './helpers/stack.js';

if (!hasCorpus) process.stderr.write(`[molvault tests] corpus import skipped: ${CORPUS} does not exist (a fresh clone has no ../shared)\n`);

/** Every file of the corpus but its documentation and the large/ recipe (see the corpus README). */
async function corpusFiles(): Promise<ImportFile[]> {
  const entries = await fs.readdir(CORPUS, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(CORPUS, path.join(e.parentPath, e.name)))
    .filter((file) => !file.startsWith('large/') && !['README.md', 'SOURCES.md', 'MANIFEST.tsv'].includes(file))
    .sort();
  return Promise.all(files.map(async (name) => ({ name, content: await fs.readFile(path.join(CORPUS, name)) })));
}

describe.skipIf(!hasCorpus /* skipped when ../shared/corpus is absent: a fresh clone has none */)(
  'the whole corpus as one import (skipped without ../shared/corpus)',
  () => {
    let stack: Stack;
    let api: Client;
    let files: ImportFile[];
    let verdicts: Map<string, string | undefined>;

    beforeAll(async () => {
      stack = await startStack();
      api = client(stack.url, (await userFactory(stack.ctx)).token);
      files = await corpusFiles();
      verdicts = new Map((await readManifest()).map((entry) => [entry.file, entry.verdict]));
    });
    afterAll(() => stack?.stop());

    /** Every file ends stored, rejected or skipped, never lost or failed; the counts are the items'. */
    function checkOutcome(done: any) {
      expect(done.state).toBe('completed');
      expect(done.items.map((i: any) => i.name)).toEqual(files.map((f) => f.name));
      expect(done.total).toBe(files.length);
      expect(done.total).toBe(done.succeeded + done.failed + done.skipped);
      const count = (state: string) => done.items.filter((i: any) => i.state === state).length;
      expect(done.succeeded).toBe(count('stored'));
      expect(done.skipped).toBe(count('skipped'));
      expect(done.failed).toBe(count('rejected') + count('failed'));
      expect(done.items.filter((i: any) => i.state === 'failed')).toEqual([]);
      for (const item of done.items) {
        if (item.state === 'stored') expect(item.structureId, item.name).toEqual(expect.any(String));
        else expect(item.error, item.name).toMatchObject({ code: expect.any(String), message: expect.stringMatching(/\w{3,}/) });
        if (verdicts.get(item.name) === 'REJECT') expect(item.state, item.name).not.toBe('stored');
        if (verdicts.get(item.name) === 'ACCEPT') expect(item.state, item.name).not.toBe('rejected');
      }
    }

    async function structureCount(projectId: string) {
      const [row] = await stack.ctx.orm.em
        .fork()
        .execute<{ structures: string; versions: string }[]>(
          'select count(distinct s.id) as structures, count(v.id) as versions from structures s left join structure_versions v on v.structure_id = s.id where s.project_id = ?',
          [projectId],
        );
      return { structures: Number(row.structures), versions: Number(row.versions) };
    }

    it('imports it as multipart files, then skips all it stored when sent again', async () => {
      const projectId = (await api.post('/v1/projects', { name: 'corpus files' })).body.id;
      const accepted = await importFiles(api, projectId, files);
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
      const started = Date.now();
      const done = await waitForImport(api, accepted.body.import.id, 600_000);
      checkOutcome(done);
      expect(done.succeeded).toBeGreaterThan(files.length / 2);
      const reasons: Record<string, number> = {};
      for (const item of done.items) if (item.error) reasons[item.error.code] = (reasons[item.error.code] ?? 0) + 1;
      process.stderr.write(
        `[molvault tests] corpus import: ${done.total} files, ${done.succeeded} stored, ${done.failed} refused, ${done.skipped} skipped in ${((Date.now() - started) / 1000).toFixed(1)} s; reasons ${JSON.stringify(reasons)}\n`,
      );
      const stored = await structureCount(projectId);
      expect(stored).toEqual({ structures: done.succeeded, versions: done.succeeded });

      const again = await waitForImport(api, (await importFiles(api, projectId, files)).body.import.id, 600_000);
      checkOutcome(again);
      expect(again.succeeded).toBe(0);
      const first = new Map(done.items.map((i: any) => [i.name, i]));
      for (const item of again.items) {
        if ((first.get(item.name) as any).state === 'stored') expect(item, item.name).toMatchObject({ state: 'skipped', error: { code: 'already_stored' } });
      }
      expect(await structureCount(projectId)).toEqual(stored);
    }, 1_200_000);

    it('imports it as a .tar.gz, then skips all it stored when sent again', async () => {
      const projectId = (await api.post('/v1/projects', { name: 'corpus archive' })).body.id;
      const archive = await buildTar(files);
      const accepted = await importArchive(api, projectId, archive);
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
      const done = await waitForImport(api, accepted.body.import.id, 600_000);
      checkOutcome(done);
      const stored = await structureCount(projectId);
      expect(stored).toEqual({ structures: done.succeeded, versions: done.succeeded });

      const again = await waitForImport(api, (await importArchive(api, projectId, archive)).body.import.id, 600_000);
      checkOutcome(again);
      expect(again.succeeded).toBe(0);
      expect(await structureCount(projectId)).toEqual(stored);
      expect(await stack.ctx.staging.list()).toEqual([]);
    }, 1_200_000);
  },
);
