import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { InspectResult, InspectTask } from '../engines/inspect.js';
import type { StructuralDiff } from '../formats/diff.js';
import type { Format, ParseOutcome } from '../formats/types.js';
import { RECEIPT_COMPLETE, RECEIPT_DROPPED, RECEIPT_SLOTS } from './receiptProgress.js';
import type { DiffTask, IngestResult, IngestTask, ParseTask, ReceiveFileTask, ReceiveTask } from './tasks.js';

const WORKER_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.mjs');

export class TaskTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} took longer than ${Math.round(ms / 1000)} s and was stopped.`);
    this.name = 'TaskTimeoutError';
  }
}

/** An upload parsed while it arrives (CpuPool.receive). */
export interface Receipt {
  /** The next bytes of the file (copied); past the length announced, the parse is dropped. */
  push(chunk: Buffer): void;
  /** The last byte is in: the outcome, or undefined when the parse was dropped or failed. */
  end(): Promise<ParseOutcome | undefined>;
  /** The upload was refused or broke off: the thread is let go. */
  abort(): void;
}

/** Files past this are not parsed as they arrive: their bytes would be held in memory whole (and offsets are 32-bit). */
export const RECEIVE_MAX_BYTES = 1024 ** 3;
/** The receiving thread is told of new bytes every so many: each message wakes it to scan what is complete. */
const RECEIVE_TELL_BYTES = 1024 * 1024;

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

  /**
   * A parse of an upload while its bytes arrive (tasks.ts `receive`), in a thread that is free now,
   * or undefined when none is (the upload is then validated the usual way) or the file may be
   * larger than RECEIVE_MAX_BYTES. Holds the thread until the last byte is in; `maxBytes` is as
   * many as may come (the declared length of the request). `leave`: threads that must stay free
   * for other tasks (a worker's jobs must not wait on a slow client's upload).
   */
  receive(format: Format, maxBytes: number, leave = 0): Receipt | undefined {
    if (!this.takeReceiptThread(maxBytes, leave)) return undefined;
    const bytes = Buffer.from(new SharedArrayBuffer(maxBytes));
    const arrived = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    let at = 0;
    let told = 0;
    let dropped = false;
    // The time limit starts with the last byte: a slow client is not the parse's fault.
    const limit = new AbortController();
    const task: ReceiveTask = { bytes: bytes.buffer as SharedArrayBuffer, arrived: arrived.buffer as SharedArrayBuffer, port: port2, format };
    const outcome = this.runHeld<ParseOutcome | undefined>('receive', task, 'Reading the structure', limit.signal, [port2]).catch(() => undefined);
    const drop = () => {
      if (dropped) return;
      dropped = true;
      port1.postMessage({ abort: true });
      port1.close();
    };
    return {
      push(chunk: Buffer) {
        if (dropped) return;
        if (at + chunk.length > maxBytes) {
          drop();
          return;
        }
        bytes.set(chunk, at);
        at += chunk.length;
        if (at - told >= RECEIVE_TELL_BYTES) {
          Atomics.store(arrived, 0, at);
          told = at;
          port1.postMessage({});
        }
      },
      end: async () => {
        if (dropped) return undefined;
        dropped = true;
        Atomics.store(arrived, 0, at);
        port1.postMessage({ end: at });
        port1.close();
        return this.settleWithin(outcome, limit);
      },
      abort: drop,
    };
  }

  /**
   * As `receive`, for a PDB upload written to `file` on this host as it arrives (local staging):
   * the thread reads each window of the file once its bytes are in (tasks.ts `receiveFile`), so
   * the bytes are not copied into memory of their own as they come (which cost the receiving
   * thread a page fault for every page of a fresh buffer the file's size). `push` only counts.
   */
  receiveFile(file: string, maxBytes: number, leave = 0): Receipt | undefined {
    if (!this.takeReceiptThread(maxBytes, leave)) return undefined;
    const progress = new Int32Array(new SharedArrayBuffer(RECEIPT_SLOTS * 4));
    let at = 0;
    let told = 0;
    let settled = false;
    const limit = new AbortController();
    const task: ReceiveFileTask = { file, maxBytes, progress: progress.buffer as SharedArrayBuffer };
    const outcome = this.runHeld<ParseOutcome | undefined>('receiveFile', task, 'Reading the structure', limit.signal).catch(() => undefined);
    const settle = (state: number) => {
      settled = true;
      Atomics.store(progress, 0, at);
      Atomics.store(progress, 1, state);
      Atomics.notify(progress, 0);
    };
    return {
      push(chunk: Buffer) {
        if (settled) return;
        at += chunk.length;
        if (at > maxBytes) {
          settle(RECEIPT_DROPPED);
          return;
        }
        Atomics.store(progress, 0, at);
        // The thread waits for a window's worth: waking it for every chunk would cost more than it saves.
        if (at - told >= RECEIVE_TELL_BYTES) {
          told = at;
          Atomics.notify(progress, 0);
        }
      },
      end: async () => {
        if (settled) return undefined;
        settle(RECEIPT_COMPLETE);
        return this.settleWithin(outcome, limit);
      },
      abort() {
        if (!settled) settle(RECEIPT_DROPPED);
      },
    };
  }

  /**
   * Takes a thread for a receipt when one is free now beyond `leave` and `maxBytes` may be held
   * (at most RECEIVE_MAX_BYTES); false otherwise (the upload is then validated the usual way).
   */
  private takeReceiptThread(maxBytes: number, leave: number): boolean {
    if (maxBytes <= 0 || maxBytes > RECEIVE_MAX_BYTES || this.running + leave >= this.maxThreads) return false;
    this.running++;
    return true;
  }

  /** A receipt's outcome once its last byte is in: the time limit starts then (a slow client is not the parse's fault). */
  private async settleWithin<T>(outcome: Promise<T>, limit: AbortController): Promise<T> {
    const timer = setTimeout(() => limit.abort(), this.timeoutMs);
    try {
      return await outcome;
    } finally {
      clearTimeout(timer);
    }
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
    return this.runHeld<T>(name, task, what, AbortSignal.timeout(this.timeoutMs));
  }

  /** A task run under a permit already taken (run, receive); the permit passes on when it settles. */
  private async runHeld<T>(name: string, task: unknown, what: string, signal: AbortSignal, transferList?: MessagePort[]): Promise<T> {
    try {
      return (await this.pool.run(task, { name, signal, transferList: transferList as never })) as T;
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
