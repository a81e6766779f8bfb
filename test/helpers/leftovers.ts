import fs from 'node:fs/promises';
import path from 'node:path';
import type { AppContext } from '../../src/runtime/context.js';

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** What an upload may have left behind: structure rows, versions, blob rows and files, staging and temp files. */
export async function leftovers(ctx: AppContext, ownerId: string) {
  const em = ctx.orm.em.fork();
  const [row] = await em.execute<{ structures: string; versions: string; blobs: string }[]>(
    `select (select count(*) from structures where owner_id = ?) as structures,
            (select count(*) from structure_versions v join structures s on s.id = v.structure_id where s.owner_id = ?) as versions,
            (select count(*) from blobs) as blobs`,
    [ownerId, ownerId],
  );
  return {
    structures: Number(row.structures),
    versions: Number(row.versions),
    blobRows: Number(row.blobs),
    blobFiles: (await listFiles(path.join(ctx.config.blobDir, 'sha256'))).length,
    tempFiles: (await listFiles(path.join(ctx.config.blobDir, 'tmp'))).length,
    stagingEntries: (await ctx.staging.list()).length,
  };
}
