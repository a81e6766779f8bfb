import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { InspectResult, InspectTask } from '../engines/inspect.js';
import type { StructuralDiff } from '../formats/diff.js';
import type { ParseOutcome } from '../formats/types.js';
import type { DiffTask, IngestResult, IngestTask, ParseTask } from './tasks.js';

const WORKER_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.mjs');

export class TaskTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} took longer than ${Math.round(ms / 1000)} s and was stopped.`);
    this.name = 'TaskTimeoutError';
  }
}

/** The piscina pool for parsing, checking and hashing; one per worker process. */
export class CpuPool {
  private readonly pool: Piscina;

  private readonly maxThreads: number;

  constructor(
    threads: number,
    private readonly timeoutMs: number,
    maxMemoryMb: number,
    /** Nice value (at least) of the threads (Linux), so parsing yields to the API. */
    nice = 0,
    /** PDB_SPLIT_MIN_BYTES: from this size on a PDB file's scan is split with a helper thread (0: never). */
    pdbSplitMinBytes = 0,
    /**
     * A worker process's pool: every thread started and kept. A thread loads its modules (the
     * TypeScript loader, the readers) before its first task; started on demand,
     * the second thread became ready only midway through an import, which ran on one thread until
     * then, and was started again after each idle minute. The first thread starts alone and
     * serves at once (threads loading at once made the first task wait for all of them); once it
     * answers, the others are started, and each of them reads a made-up PDB and mmCIF structure a
     * few times as it starts (pool/warmUp.ts), so the readers' code is optimised before it takes
     * real files. The first thread warms up on its first files.
     */
    warm = false,
  ) {
    this.maxThreads = threads;
    this.pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: 1,
      maxThreads: threads,
      idleTimeout: warm ? Number.POSITIVE_INFINITY : 60_000,
      // A file that blows past this limit kills only its own thread; piscina replaces it.
      resourceLimits: { maxOldGenerationSizeMb: maxMemoryMb },
      // Threads count themselves as they start: all but the first of a warm pool warm up.
      workerData: { nice, pdbSplitMinBytes, warmUp: warm, started: new Int32Array(new SharedArrayBuffer(4)) },
    });
    // A thread that dies outside a task (out of memory while starting, say) is replaced by
    // piscina; without a listener its 'error' event would take the whole worker process down.
    // A task whose thread died fails on its own, and one that never starts meets the timeout.
    this.pool.on('error', () => {});
    this.warmed = warm ? this.warmUp(threads) : Promise.resolve();
  }

  /** Settles once a warm pool's threads have all been started (a failure only leaves tasks to start them). */
  readonly warmed: Promise<void>;

  private async warmUp(threads: number): Promise<void> {
    try {
      await this.pool.run({}, { name: 'ready' });
      // Piscina starts a thread for each task no running thread is free for, and keeps it (no idle timeout).
      await Promise.all(Array.from({ length: threads }, () => this.pool.run({}, { name: 'ready' })));
    } catch {
      // Closed meanwhile, or a thread lost: tasks start threads as they need them.
    }
  }

  ingest(task: IngestTask): Promise<IngestResult> {
    return this.run<IngestResult>('ingest', task, 'Unpacking and hashing the file');
  }

  parse(task: ParseTask): Promise<ParseOutcome> {
    return this.run<ParseOutcome>('parse', task, 'Reading the structure');
  }

  diff(task: DiffTask): Promise<StructuralDiff> {
    return this.run<StructuralDiff>('diff', task, 'Comparing the two versions');
  }

  /** A conversion's output parsed and checked, with its bonds and charges (or only those). */
  inspect(task: InspectTask): Promise<InspectResult> {
    return this.run<InspectResult>('inspect', task, 'Reading the converted structure');
  }

  /** Tasks handed to piscina and not yet settled, and those waiting for a free thread (in order). */
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * A task is handed to piscina only when a thread is free, and its time limit starts then: a
   * healthy file queued behind a bulk import's parses is not cut off for the time it waited.
   */
  private async run<T>(name: string, task: unknown, what: string): Promise<T> {
    if (this.running < this.maxThreads) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return (await this.pool.run(task, { name, signal })) as T;
    } catch (error) {
      if (signal.aborted) throw new TaskTimeoutError(what, this.timeoutMs);
      throw error;
    } finally {
      // The permit passes straight to the next waiting task, or is returned.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    await this.pool.close({ force: true });
  }
}
