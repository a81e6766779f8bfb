import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import type { ChimeraXDriver } from '../src/engines/chimerax.js';
import { EngineCatalog, EnginePool, type EngineSettings } from '../src/engines/pool.js';
import { EngineError, runProcess } from '../src/engines/process.js';
import { parseStructure } from '../src/formats/parse.js';
import { createLogger } from '../src/lib/logger.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string) => path.join(here, 'fixtures', name);
/** Stands in for ChimeraX, because ChimeraX cannot be installed on these machines (see the file's header). */
const FAKE_CHIMERAX = path.join(here, 'support', 'fakeChimeraX.mjs');
const log = createLogger('silent');

/** Gone, or a zombie nobody has reaped yet (it runs nothing): either way the process is dead. */
async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || /^\d+ \(.*\) Z/.test(stat);
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

let tmp: string;
let settings: EngineSettings;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-engines-'));
  settings = { ...loadConfig({ DATA_DIR: tmp }).engines, timeoutMs: 30_000 };
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const scratchEntries = async () => fs.readdir(settings.scratchDir).catch(() => [] as string[]);

describe('running engine processes', () => {
  it('kills the whole process tree on timeout: the grandchild is gone too', async () => {
    const pidFile = path.join(tmp, 'grandchild.pid');
    const started = Date.now();
    const error = await runProcess('sh', ['-c', `sleep 300 & echo $! > ${pidFile}; wait`], { timeoutMs: 700, what: 'a hanging engine' }).catch((e) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error.code).toBe('engine_timeout');
    expect(error.message).toBe('a hanging engine took longer than 700 ms and was stopped.');
    expect(Date.now() - started).toBeLessThan(10_000);
    const grandchild = Number(await fs.readFile(pidFile, 'utf8'));
    expect(grandchild).toBeGreaterThan(0);
    expect(await eventually(() => processGone(grandchild))).toBe(true);
  });
});

describe('the engine pool with the command-line engines', () => {
  it('detects gemmi and Open Babel once, with their versions', async () => {
    const catalog = await EngineCatalog.detect(settings);
    expect(catalog.engines.gemmi).toMatchObject({ installed: true, version: expect.stringMatching(/^\d+\.\d+/) });
    expect(catalog.engines.openbabel).toMatchObject({ installed: true, version: expect.stringMatching(/^\d+\.\d+/) });
    expect(catalog.engines.chimerax.installed).toBe(false);
    expect(catalog.plan({ format: 'pdb' }, 'cif')).toMatchObject({ ok: true, engine: 'gemmi' });
    expect(catalog.plan({ format: 'mol2' }, 'xyz')).toMatchObject({ ok: true, engine: 'openbabel' });
    // Nothing writes BinaryCIF; gemmi does not read small-molecule CIF, Open Babel does; nothing reads a chemical component.
    expect(catalog.plan({ format: 'pdb' }, 'bcif')).toMatchObject({ ok: false, wouldWork: [] });
    expect(catalog.plan({ format: 'cif', dialect: 'coreCIF' }, 'pdb')).toMatchObject({ ok: true, engine: 'openbabel' });
    expect(catalog.plan({ format: 'cif', dialect: 'chemical component' }, 'pdb')).toMatchObject({ ok: false });
  });

  it('says which conversions are unavailable without an engine, and which engine would make them', async () => {
    const catalog = await EngineCatalog.detect({ ...settings, gemmiBin: '/nonexistent/gemmi', obabelBin: '/nonexistent/obabel' });
    expect(catalog.engines.gemmi.installed).toBe(false);
    const plan = catalog.plan({ format: 'pdb' }, 'cif');
    expect(plan).toMatchObject({ ok: false, wouldWork: ['chimerax', 'gemmi'] });
    if (!plan.ok) expect(plan.message).toBe('Converting PDB to mmCIF needs ChimeraX or gemmi, which are not installed on this server.');
    expect(catalog.unavailableConversions()).toContain('sdf→mol2 (ChimeraX or Open Babel)');
  });

  it('converts PDB to mmCIF with gemmi, records the engine version and removes the scratch directory', async () => {
    const catalog = await EngineCatalog.detect(settings);
    const pool = new EnginePool(catalog, settings, log);
    const result = await pool.convert({ path: fixture('ngl_1crn.pdb'), format: 'pdb' }, 'cif', async (output, engine) => {
      const outcome = await parseStructure(await fs.readFile(output, 'latin1'), 'cif');
      expect((await scratchEntries()).length).toBe(1); // it exists while the output is in use
      return { atoms: outcome.ok ? outcome.summary.atoms : 0, engine };
    });
    expect(result.atoms).toBe(327);
    expect(result.engine).toEqual({ name: 'gemmi', version: catalog.engines.gemmi.version });
    expect(await scratchEntries()).toEqual([]);
  });

  it('removes the scratch directory when the engine fails, and when using the output fails', async () => {
    const pool = new EnginePool(await EngineCatalog.detect(settings), settings, log);
    const garbage = path.join(tmp, 'garbage.sdf');
    await fs.writeFile(garbage, 'not a molecule\n');
    const engineFailure = await pool.convert({ path: garbage, format: 'sdf' }, 'mol2', async () => 'used').catch((e) => e);
    expect(engineFailure).toBeInstanceOf(EngineError);
    expect(engineFailure.message).toMatch(/^Open Babel \(sdf → mol2\) converted nothing/);
    expect(await scratchEntries()).toEqual([]);
    const useFailure = await pool
      .convert({ path: fixture('chemfiles_aspirin.sdf'), format: 'sdf' }, 'mol2', async () => {
        throw new Error('storing failed');
      })
      .catch((e) => e);
    expect(useFailure.message).toBe('storing failed');
    expect(await scratchEntries()).toEqual([]);
  });

  it('fails a conversion that passes the timeout with a clear error, kills its process tree and cleans up', async () => {
    // An "engine" that starts a worker process of its own and never finishes.
    const hanging = path.join(tmp, 'hanging-gemmi.sh');
    await fs.writeFile(hanging, '#!/bin/sh\nsleep 300 &\necho $! > "$4.child-pid"\nwait\n', { mode: 0o755 });
    const catalog = new EngineCatalog({
      ...(await EngineCatalog.detect(settings)).engines,
      gemmi: { name: 'gemmi', label: 'gemmi', installed: true, version: 'hanging' },
    });
    const input = path.join(tmp, 'input.pdb');
    await fs.copyFile(fixture('ngl_1crn.pdb'), input);
    const pool = new EnginePool(catalog, { ...settings, gemmiBin: hanging }, log);
    const error = await pool.convert({ path: input, format: 'pdb' }, 'cif', async () => 'used', { timeoutMs: 800 }).catch((e) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error.message).toBe('gemmi convert (pdb → cif) took longer than 800 ms and was stopped.');
    const child = Number(await fs.readFile(`${input}.child-pid`, 'utf8'));
    expect(await eventually(() => processGone(child))).toBe(true);
    expect(await scratchEntries()).toEqual([]);
  });

  it('sweeps scratch directories a crashed worker left behind, and only those', async () => {
    const pool = new EnginePool(await EngineCatalog.detect(settings), settings, log);
    await fs.mkdir(path.join(settings.scratchDir, 'gemmi-left-by-a-crash'), { recursive: true });
    await fs.mkdir(path.join(settings.scratchDir, 'gemmi-in-use-elsewhere'), { recursive: true });
    const old = new Date(Date.now() - 3 * settings.timeoutMs);
    await fs.utimes(path.join(settings.scratchDir, 'gemmi-left-by-a-crash'), old, old);
    expect(await pool.sweepScratch()).toEqual(['gemmi-left-by-a-crash']);
    expect(await scratchEntries()).toEqual(['gemmi-in-use-elsewhere']);
    await fs.rm(path.join(settings.scratchDir, 'gemmi-in-use-elsewhere'), { recursive: true });
  });

  it('runs at most the configured number of engine processes at once', async () => {
    const probe = path.join(tmp, 'probe-gemmi.sh');
    const counter = path.join(tmp, 'running');
    // Records how many copies run at the same moment, then behaves like gemmi would.
    await fs.writeFile(
      probe,
      `#!/bin/sh\necho start >> ${counter}\nn=$(grep -c start ${counter}); m=$(grep -c end ${counter} || true)\necho $((n - m)) >> ${counter}.max\nsleep 0.3\necho end >> ${counter}\nexec gemmi "$@"\n`,
      { mode: 0o755 },
    );
    const catalog = await EngineCatalog.detect(settings);
    const pool = new EnginePool(catalog, { ...settings, gemmiBin: probe, concurrency: 2 }, log);
    await Promise.all(Array.from({ length: 5 }, () => pool.convert({ path: fixture('ngl_1crn.pdb'), format: 'pdb' }, 'cif', async () => true)));
    const peaks = (await fs.readFile(`${counter}.max`, 'utf8')).trim().split('\n').map(Number);
    expect(peaks).toHaveLength(5);
    expect(Math.max(...peaks)).toBe(2);
  });
});

/**
 * ChimeraX cannot be installed on these machines. These tests run the real long-lived pool
 * mechanics (warm processes, REST calls, recycling, crash and timeout recovery) against
 * test/support/fakeChimeraX.mjs, a small long-lived process that stands in for ChimeraX and speaks
 * the same `remotecontrol rest ... json true` shape. test/chimerax.conformance.test.ts runs
 * against the real ChimeraX where CHIMERAX_BIN is set.
 */
describe('the long-lived ChimeraX pool, against a stand-in process because ChimeraX cannot be installed here', () => {
  const fakeSettings = () => ({ ...settings, chimeraxBin: FAKE_CHIMERAX, chimeraxProcesses: 1, chimeraxJobsPerProcess: 2, chimeraxStartTimeoutMs: 20_000 });
  let pool: EnginePool;
  let driver: ChimeraXDriver;

  beforeAll(async () => {
    const catalog = await EngineCatalog.detect(fakeSettings());
    expect(catalog.engines.chimerax).toMatchObject({ installed: true, version: '0.0.1-molvault-stand-in' });
    pool = new EnginePool(catalog, fakeSettings(), log);
    driver = pool.driver('chimerax') as ChimeraXDriver;
  });

  afterAll(async () => {
    await pool?.close();
  });

  const convertCrambin = () =>
    pool.convert({ path: fixture('ngl_1crn.pdb'), format: 'pdb' }, 'cif', async (output, engine) => {
      const outcome = await parseStructure(await fs.readFile(output, 'latin1'), 'cif');
      return { atoms: outcome.ok ? outcome.summary.atoms : -1, engine };
    });

  it('is chosen first for what it handles, and keeps a warm process between jobs', async () => {
    await pool.warm();
    const [warmPid] = driver.idlePids;
    expect(warmPid).toBeGreaterThan(0);
    const first = await convertCrambin();
    expect(first).toEqual({ atoms: 327, engine: { name: 'chimerax', version: '0.0.1-molvault-stand-in' } });
    // The same process ran the job and waits for the next (its session was closed, or the stand-in would refuse to open).
    expect(driver.idlePids).toEqual([warmPid]);
    expect(await scratchEntries()).toEqual([]);
  });

  it('recycles a process after the configured number of jobs', async () => {
    const [before] = driver.idlePids;
    await convertCrambin(); // the second job of this process: it is retired afterwards
    expect(await eventually(async () => processGone(before as number))).toBe(true);
    expect(driver.history.find((h) => h.pid === before)?.ended).toBe('recycled');
    const third = await convertCrambin();
    expect(third.atoms).toBe(327);
    expect(driver.idlePids).toHaveLength(1);
    expect(driver.idlePids[0]).not.toBe(before);
  });

  it('replaces a process that crashed, and the crashed job fails with a clear error', async () => {
    const [before] = driver.idlePids;
    const crashing = path.join(tmp, 'crash.pdb');
    await fs.writeFile(crashing, `REMARK FAKE_CHIMERAX_CRASH\n${await fs.readFile(fixture('ngl_1crn.pdb'), 'utf8')}`);
    const error = await pool.convert({ path: crashing, format: 'pdb' }, 'cif', async () => 'used').catch((e) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error.code).toBe('engine_crashed');
    expect(error.message).toMatch(/^ChimeraX stopped answering .*; it may have crashed\.$/);
    expect(await eventually(() => processGone(before as number))).toBe(true);
    const after = await convertCrambin();
    expect(after.atoms).toBe(327);
    expect(driver.idlePids[0]).not.toBe(before);
    expect(await scratchEntries()).toEqual([]);
  });

  it('kills a process that passes the timeout, with what it started, and replaces it', async () => {
    const [before] = driver.idlePids;
    const hanging = path.join(tmp, 'hang.pdb');
    const childPidFile = path.join(tmp, 'chimerax-child.pid');
    await fs.writeFile(hanging, `REMARK FAKE_CHIMERAX_HANG ${childPidFile}\n${await fs.readFile(fixture('ngl_1crn.pdb'), 'utf8')}`);
    const error = await pool.convert({ path: hanging, format: 'pdb' }, 'cif', async () => 'used', { timeoutMs: 1500 }).catch((e) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error.code).toBe('engine_timeout');
    expect(error.message).toBe('ChimeraX (pdb → cif) took longer than 1.5 s and was stopped (at "open").');
    const child = Number(await fs.readFile(childPidFile, 'utf8'));
    expect(await eventually(() => processGone(child))).toBe(true);
    expect(await eventually(() => processGone(before as number))).toBe(true);
    expect(driver.history.find((h) => h.pid === before)?.ended).toBe('timeout');
    expect((await convertCrambin()).atoms).toBe(327);
    expect(await scratchEntries()).toEqual([]);
  });

  it('stops every ChimeraX process when the pool closes', async () => {
    if (driver.idlePids.length === 0) await convertCrambin();
    const pids = driver.idlePids as number[];
    expect(pids).toHaveLength(1);
    await pool.close();
    expect(await eventually(() => processGone(pids[0]))).toBe(true);
  });
});
