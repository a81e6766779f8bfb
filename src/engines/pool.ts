import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { FORMAT_LABELS, FORMATS, type Format } from '../formats/types.js';
import type { Logger } from '../lib/logger.js';
import { ChimeraXDriver } from './chimerax.js';
import { GemmiDriver, OpenBabelDriver, probeVersion } from './cli.js';
import { EngineError } from './process.js';
import { type ConversionNotes, type ConversionSource, ENGINE_LABELS, ENGINE_NAMES, type EngineDriver, type EngineName, enginesFor } from './types.js';

export type EngineSettings = Config['engines'];

export interface DetectedEngine {
  name: EngineName;
  label: string;
  installed: boolean;
  version?: string;
  /** Why it is not installed (not configured, command not found). */
  missing?: string;
}

export type ConversionPlan = { ok: true; engine: EngineName; version: string } | { ok: false; message: string; wouldWork: EngineName[] };

/** Which engines this machine has and what they are, found once when a process starts. */
export class EngineCatalog {
  constructor(readonly engines: Record<EngineName, DetectedEngine>) {}

  static async detect(settings: EngineSettings): Promise<EngineCatalog> {
    const [gemmi, openbabel, chimerax] = await Promise.all([
      probeVersion(settings.gemmiBin, ['--version'], /gemmi\s+([0-9][^\s]*)/i),
      probeVersion(settings.obabelBin, ['-V'], /Open Babel\s+([0-9][^\s]*)/i),
      settings.chimeraxBin ? probeVersion(settings.chimeraxBin, ['--nogui', '--version'], /version:?\s*([0-9][^\s]*)/i, 120_000) : undefined,
    ]);
    const entry = (name: EngineName, version: string | undefined, missing: string): DetectedEngine =>
      version ? { name, label: ENGINE_LABELS[name], installed: true, version } : { name, label: ENGINE_LABELS[name], installed: false, missing };
    return new EngineCatalog({
      gemmi: entry('gemmi', gemmi, `"${settings.gemmiBin}" did not answer (install the Debian package gemmi, or set GEMMI_BIN)`),
      openbabel: entry('openbabel', openbabel, `"${settings.obabelBin}" did not answer (install the Debian package openbabel, or set OBABEL_BIN)`),
      chimerax: entry('chimerax', chimerax, settings.chimeraxBin ? `"${settings.chimeraxBin}" did not answer --version` : 'CHIMERAX_BIN is not set'),
    });
  }

  installed(name: EngineName): boolean {
    return this.engines[name].installed;
  }

  /** The best installed engine for the conversion, or why there is none and which engine would do it. */
  plan(source: ConversionSource, to: Format): ConversionPlan {
    const candidates = enginesFor(source, to);
    const chosen = candidates.find((name) => this.installed(name));
    if (chosen) return { ok: true, engine: chosen, version: this.engines[chosen].version as string };
    const fromLabel = source.dialect ? `CIF (${source.dialect})` : FORMAT_LABELS[source.format];
    if (candidates.length === 0) {
      return { ok: false, wouldWork: [], message: `No conversion engine molvault knows can turn ${fromLabel} into ${FORMAT_LABELS[to]}.` };
    }
    const names = candidates.map((name) => ENGINE_LABELS[name]);
    return {
      ok: false,
      wouldWork: candidates,
      message: `Converting ${fromLabel} to ${FORMAT_LABELS[to]} needs ${names.join(' or ')}, which ${candidates.length > 1 ? 'are' : 'is'} not installed on this server.`,
    };
  }

  /** "from → to" pairs some engine could make but no installed one can: what this server cannot do. */
  unavailableConversions(): string[] {
    const missing: string[] = [];
    for (const from of FORMATS) {
      for (const to of FORMATS) {
        if (from === to) continue;
        const plan = this.plan({ format: from }, to);
        if (!plan.ok && plan.wouldWork.length > 0) missing.push(`${from}→${to} (${plan.wouldWork.map((n) => ENGINE_LABELS[n]).join(' or ')})`);
      }
    }
    return missing;
  }

  /** Logs what is installed and which conversions are unavailable because of what is not. */
  report(log: Logger): void {
    const summary = Object.fromEntries(ENGINE_NAMES.map((name) => [name, this.engines[name].version ?? `not installed: ${this.engines[name].missing}`]));
    log.info({ engines: summary }, 'conversion engines');
    const missing = this.unavailableConversions();
    if (missing.length > 0) log.warn({ unavailable: missing }, `conversions unavailable on this server: ${missing.join(', ')}`);
  }
}

const EXTENSIONS: Record<Format, string> = { pdb: 'pdb', cif: 'cif', bcif: 'bcif', sdf: 'sdf', mol: 'mol', mol2: 'mol2', xyz: 'xyz', cxs: 'cxs' };

export interface ConversionInput extends ConversionSource {
  path: string;
}

export interface EngineUsed {
  name: EngineName;
  version: string;
  /** What the engine had to do to the input, and engines that failed before it (for the loss report). */
  notes?: ConversionNotes;
}

/**
 * Runs conversions in the installed engines: chooses one by capability and preference, runs at
 * most `concurrency` at once, gives each job a scratch directory that is removed whatever happens,
 * and kills a job (with its whole process tree) when it passes the timeout.
 */
export class EnginePool {
  private readonly drivers = new Map<EngineName, EngineDriver>();
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    readonly catalog: EngineCatalog,
    private readonly settings: EngineSettings,
    log: Logger,
  ) {
    const { engines } = catalog;
    if (engines.gemmi.installed) this.drivers.set('gemmi', new GemmiDriver(engines.gemmi.version as string, settings.gemmiBin));
    if (engines.openbabel.installed) this.drivers.set('openbabel', new OpenBabelDriver(engines.openbabel.version as string, settings.obabelBin));
    if (engines.chimerax.installed && settings.chimeraxBin) {
      this.drivers.set(
        'chimerax',
        new ChimeraXDriver(engines.chimerax.version as string, {
          bin: settings.chimeraxBin,
          processes: settings.chimeraxProcesses,
          jobsPerProcess: settings.chimeraxJobsPerProcess,
          startTimeoutMs: settings.chimeraxStartTimeoutMs,
          log,
        }),
      );
    }
  }

  driver(name: EngineName): EngineDriver | undefined {
    return this.drivers.get(name);
  }

  /** Starts the long-lived engines (ChimeraX) so the first job does not wait for them. */
  async warm(): Promise<void> {
    await Promise.all([...this.drivers.values()].map((d) => d.warm?.()));
  }

  /**
   * Converts `input` to `to` and hands the output file to `use` while the scratch directory still
   * exists; the directory is removed afterwards, also when the engine or `use` fails.
   */
  async convert<T>(
    input: ConversionInput,
    to: Format,
    use: (output: string, engine: EngineUsed) => Promise<T>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    const plan = this.catalog.plan(input, to);
    if (!plan.ok) throw new EngineError(plan.message, 'engine_unavailable');
    const driver = this.drivers.get(plan.engine);
    if (!driver) throw new EngineError(`${ENGINE_LABELS[plan.engine]} is installed but not loaded in this worker.`, 'engine_unavailable');
    // The preferred engine first; when it refuses the file, the next one that can make the format.
    const drivers = [driver, ...enginesFor(input, to).flatMap((name) => (name !== driver.name && this.drivers.get(name)) || [])];
    const refused: string[] = [];
    for (const [i, current] of drivers.entries()) {
      await fs.mkdir(this.settings.scratchDir, { recursive: true });
      const scratch = await fs.mkdtemp(path.join(this.settings.scratchDir, `${current.name}-`));
      try {
        const output = path.join(scratch, `output.${EXTENSIONS[to]}`);
        let notes: ConversionNotes | undefined;
        try {
          notes = await this.slot(() =>
            current.convert({ input: input.path, from: input.format, to, output, scratch, timeoutMs: options.timeoutMs ?? this.settings.timeoutMs }),
          );
        } catch (error) {
          // A timeout would likely repeat; a refusal of the file may not, with another engine.
          const retry = error instanceof EngineError && error.code === 'engine_failed' && i < drivers.length - 1;
          if (!retry) throw error;
          refused.push(`${ENGINE_LABELS[current.name]} could not convert the file (${error.message}), so ${ENGINE_LABELS[drivers[i + 1].name]} was used.`);
          continue;
        }
        const all = [...refused, ...(notes?.notes ?? [])];
        const used: EngineUsed = { name: current.name, version: current.version };
        if (all.length > 0) used.notes = { ...notes, notes: all };
        return await use(output, used);
      } finally {
        await fs.rm(scratch, { recursive: true, force: true });
      }
    }
    throw new EngineError('No engine could convert the file.');
  }

  /**
   * Removes scratch directories a crashed worker left behind. Only those untouched for twice the
   * job timeout: workers on other hosts or processes may share DATA_DIR and still be using theirs.
   */
  async sweepScratch(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const entries = await fs.readdir(this.settings.scratchDir).catch(() => [] as string[]);
    for (const entry of entries) {
      const dir = path.join(this.settings.scratchDir, entry);
      const stat = await fs.stat(dir).catch(() => undefined);
      if (stat && now - stat.mtimeMs > 2 * this.settings.timeoutMs) {
        await fs.rm(dir, { recursive: true, force: true });
        removed.push(entry);
      }
    }
    return removed;
  }

  /** Bounded concurrency: at most `settings.concurrency` engine runs at once in this process. */
  private async slot<T>(run: () => Promise<T>): Promise<T> {
    if (this.active >= this.settings.concurrency) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active++;
    try {
      return await run();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.drivers.values()].map((d) => d.close?.()));
  }
}
