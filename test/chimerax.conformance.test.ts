import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import type { ChimeraXDriver } from '../src/engines/chimerax.js';
import { EngineCatalog, EnginePool } from '../src/engines/pool.js';
import { parseStructure } from '../src/formats/parse.js';
import type { Format } from '../src/formats/types.js';
import { createLogger } from '../src/lib/logger.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string) => path.join(here, 'fixtures', name);
const chimeraxBin = loadConfig().engines.chimeraxBin;

/**
 * The real ChimeraX, driven the way molvault drives it (long-lived --nogui --offscreen processes,
 * remotecontrol rest, open / save / close session). ChimeraX cannot be installed on the machines
 * this suite usually runs on, so this runs only where CHIMERAX_BIN names a ChimeraX executable;
 * test/engines.test.ts covers the same pool mechanics with a stand-in process.
 */
describe.skipIf(!chimeraxBin)('ChimeraX conformance (skipped unless CHIMERAX_BIN is set, because ChimeraX is not installed here)', () => {
  let tmp: string;
  let pool: EnginePool;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-chimerax-'));
    const settings = { ...loadConfig({ DATA_DIR: tmp, CHIMERAX_BIN: chimeraxBin }).engines, chimeraxJobsPerProcess: 2 };
    const catalog = await EngineCatalog.detect(settings);
    expect(catalog.engines.chimerax.installed).toBe(true);
    pool = new EnginePool(catalog, settings, createLogger('silent'));
    await pool.warm();
  }, 300_000);

  afterAll(async () => {
    await pool?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const cases: [string, Format, Format, number][] = [
    ['ngl_1crn.pdb', 'pdb', 'cif', 327],
    ['ngl_1CRN.cif', 'cif', 'pdb', 327],
    ['chemfiles_aspirin.sdf', 'sdf', 'mol2', 21],
  ];

  it.each(cases)(
    'converts %s from %s to %s and keeps every atom',
    async (file, from, to, atoms) => {
      const result = await pool.convert({ path: fixture(file), format: from }, to, async (output, engine) => {
        const outcome = await parseStructure(await fs.readFile(output, 'latin1'), to);
        return { engine: engine.name, atoms: outcome.ok ? outcome.summary.atoms : -1 };
      });
      expect(result).toEqual({ engine: 'chimerax', atoms });
    },
    120_000,
  );

  it('recycled processes after two jobs each and left no scratch directory', async () => {
    const driver = pool.driver('chimerax') as ChimeraXDriver;
    expect(driver.history.filter((h) => h.ended === 'recycled').length).toBeGreaterThanOrEqual(1);
    expect(await fs.readdir(path.join(tmp, 'scratch')).catch(() => [])).toEqual([]);
  });
});
