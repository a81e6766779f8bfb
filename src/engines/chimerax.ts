import { type ChildProcess, spawn } from 'node:child_process';
import type { Format } from '../formats/types.js';
import type { Logger } from '../lib/logger.js';
import { freePort } from '../runtime/net.js';
import { EngineError, formatSeconds, killProcessTree } from './process.js';
import type { ConversionRequest, EngineDriver, EngineName } from './types.js';

/** ChimeraX's names for the formats it opens and saves. */
const CHIMERAX_FORMATS: Partial<Record<Format, string>> = { pdb: 'pdb', cif: 'mmcif', sdf: 'sdf', mol: 'sdf', mol2: 'mol2' };

/** What `remotecontrol rest ... json true` answers for every /run request. */
interface RestReply {
  'python values'?: unknown[];
  'json values'?: unknown[];
  'log messages'?: Record<string, string[]>;
  error?: { type?: string; message?: string } | null;
}

export interface ChimeraXOptions {
  bin: string;
  processes: number;
  /** A process is replaced after this many jobs (ChimeraX grows with use; a fresh one is predictable). */
  jobsPerProcess: number;
  startTimeoutMs: number;
  log: Logger;
}

const quote = (path: string) => `"${path.replace(/"/g, '\\"')}"`;

/** One long-lived `ChimeraX --nogui --offscreen` process, driven through its REST server. */
export class ChimeraXProcess {
  private child?: ChildProcess;
  private port = 0;
  private exited = false;
  private output = '';
  jobs = 0;

  constructor(private readonly options: ChimeraXOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && !this.exited;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawn(this.options.bin, ['--nogui', '--offscreen', '--cmd', `remotecontrol rest start port ${this.port} json true`], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (d: Buffer) => {
      this.output = (this.output + String(d)).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<void>((resolve) => {
      child.on('exit', () => {
        this.exited = true;
        resolve();
      });
      child.on('error', (error) => {
        this.exited = true;
        this.output += `\n${error.message}`;
        resolve();
      });
    });
    const deadline = Date.now() + this.options.startTimeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) break;
      if (await this.healthy(2000)) return;
      await Promise.race([exited, new Promise((r) => setTimeout(r, 200))]);
    }
    this.kill();
    const last = this.output.trim().split('\n').slice(-3).join(' ');
    throw new EngineError(
      this.exited
        ? `ChimeraX exited while starting${last ? `: ${last}` : ''}.`
        : `ChimeraX did not start its REST server within ${formatSeconds(this.options.startTimeoutMs)}.`,
      'engine_crashed',
    );
  }

  /** The health check: the process is there and answers a trivial command. */
  async healthy(timeoutMs = 5000): Promise<boolean> {
    if (!this.alive) return false;
    try {
      await this.run('version', timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs one command; a ChimeraX error becomes an EngineError with ChimeraX's message. */
  async run(command: string, timeoutMs: number): Promise<RestReply> {
    let response: Response;
    try {
      response = await fetch(`http://127.0.0.1:${this.port}/run?command=${encodeURIComponent(command)}`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') {
        throw new EngineError(`ChimeraX took longer than ${formatSeconds(timeoutMs)} on "${command.split(' ')[0]}" and was stopped.`, 'engine_timeout');
      }
      throw new EngineError(`ChimeraX stopped answering (${(error as Error).message}); it may have crashed.`, 'engine_crashed');
    }
    const text = await response.text();
    let reply: RestReply;
    try {
      reply = JSON.parse(text) as RestReply;
    } catch {
      throw new EngineError(`ChimeraX answered "${command.split(' ')[0]}" with something other than JSON (HTTP ${response.status}).`, 'engine_failed');
    }
    if (reply.error) {
      throw new EngineError(
        `ChimeraX could not run "${command.split(' ')[0]}": ${reply.error.message ?? reply.error.type ?? 'unknown error'}`,
        'engine_failed',
      );
    }
    return reply;
  }

  kill(): void {
    if (this.child) killProcessTree(this.child);
  }
}

/**
 * A pool of warm ChimeraX processes. Each job: open, save, `close session`. A process that
 * crashed, timed out or failed its health check is killed (with its process group) and replaced;
 * one that has run `jobsPerProcess` jobs is retired.
 */
export class ChimeraXDriver implements EngineDriver {
  readonly name: EngineName = 'chimerax';
  private readonly idle: ChimeraXProcess[] = [];
  private running = 0;
  private readonly waiting: ((process: ChimeraXProcess | Error) => void)[] = [];
  private closed = false;
  private readonly live = new Set<ChimeraXProcess>();
  /** Every process this driver has started, for tests and metrics: pid and why it ended. */
  readonly history: { pid?: number; ended?: 'recycled' | 'crashed' | 'timeout' | 'unhealthy' | 'closed' }[] = [];

  constructor(
    readonly version: string,
    private readonly options: ChimeraXOptions,
  ) {}

  async warm(): Promise<void> {
    while (this.running + this.idle.length < this.options.processes) {
      this.running++;
      try {
        this.idle.push(await this.spawnProcess());
      } finally {
        this.running--;
      }
    }
  }

  /** pids of the processes waiting for work. */
  get idlePids(): (number | undefined)[] {
    return this.idle.map((p) => p.pid);
  }

  private async spawnProcess(): Promise<ChimeraXProcess> {
    const process = new ChimeraXProcess(this.options);
    const record: (typeof this.history)[number] = {};
    this.history.push(record);
    this.live.add(process);
    try {
      await process.start();
    } catch (error) {
      this.live.delete(process);
      throw error;
    }
    record.pid = process.pid;
    this.options.log.info({ pid: process.pid }, 'ChimeraX process started');
    return process;
  }

  private retire(process: ChimeraXProcess, why: NonNullable<(typeof this.history)[number]['ended']>): void {
    const record = this.history.find((h) => h.pid === process.pid && !h.ended);
    if (record) record.ended = why;
    this.live.delete(process);
    process.kill();
    if (why !== 'recycled' && why !== 'closed') this.options.log.warn({ pid: process.pid, why }, 'ChimeraX process replaced');
  }

  private async acquire(): Promise<ChimeraXProcess> {
    if (this.closed) throw new EngineError('The ChimeraX pool is shutting down.', 'engine_unavailable');
    while (this.idle.length > 0) {
      const candidate = this.idle.shift() as ChimeraXProcess;
      if (await candidate.healthy()) {
        this.running++;
        return candidate;
      }
      this.retire(candidate, candidate.alive ? 'unhealthy' : 'crashed');
    }
    if (this.running < this.options.processes) {
      this.running++;
      try {
        return await this.spawnProcess();
      } catch (error) {
        this.running--;
        throw error;
      }
    }
    const next = await new Promise<ChimeraXProcess | Error>((resolve) => this.waiting.push(resolve));
    if (next instanceof Error) throw next;
    return next;
  }

  private release(process: ChimeraXProcess | undefined): void {
    const waiter = this.waiting.shift();
    if (process && !this.closed) {
      if (waiter) {
        waiter(process);
        return;
      }
      this.running--;
      this.idle.push(process);
      return;
    }
    this.running--;
    // The process is gone: a waiter gets a fresh one (or the error starting it).
    if (waiter) {
      this.running++;
      this.spawnProcess().then(waiter, (error) => {
        this.running--;
        waiter(error as Error);
      });
    }
  }

  async convert(request: ConversionRequest): Promise<undefined> {
    const from = CHIMERAX_FORMATS[request.from];
    const to = CHIMERAX_FORMATS[request.to];
    if (!from || !to) throw new EngineError(`ChimeraX cannot convert ${request.from} to ${request.to}.`, 'engine_unavailable');
    const deadline = Date.now() + request.timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const process = await this.acquire();
    let keep = false;
    let step = 'open';
    try {
      await process.run(`open ${quote(request.input)} format ${from}`, left());
      step = 'save';
      await process.run(`save ${quote(request.output)} format ${to}`, left());
      step = 'close session';
      await process.run('close session', left());
      process.jobs++;
      keep = process.jobs < this.options.jobsPerProcess;
      if (!keep) this.retire(process, 'recycled');
      return undefined;
    } catch (error) {
      const code = error instanceof EngineError ? error.code : 'engine_failed';
      if (code === 'engine_timeout' || code === 'engine_crashed' || !process.alive) {
        this.retire(process, code === 'engine_timeout' ? 'timeout' : 'crashed');
      } else {
        // ChimeraX refused the file but is fine: clear what the job left and keep the process.
        keep = await process.run('close session', 10_000).then(
          () => true,
          () => false,
        );
        if (!keep) this.retire(process, 'unhealthy');
      }
      if (code === 'engine_timeout') {
        throw new EngineError(
          `ChimeraX (${request.from} → ${request.to}) took longer than ${formatSeconds(request.timeoutMs)} and was stopped (at "${step}").`,
          'engine_timeout',
        );
      }
      throw error;
    } finally {
      this.release(keep ? process : undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter(new EngineError('The ChimeraX pool is shutting down.', 'engine_unavailable'));
    this.idle.splice(0);
    // Jobs still running fail with "stopped answering"; their processes must not outlive the worker.
    for (const process of [...this.live]) this.retire(process, 'closed');
  }
}
