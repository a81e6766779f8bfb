import { type ChildProcess, spawn } from 'node:child_process';

/** A conversion that went wrong, with a sentence a user can read. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly code: 'engine_timeout' | 'engine_failed' | 'engine_crashed' | 'engine_output_invalid' | 'engine_unavailable' = 'engine_failed',
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/**
 * Kills a detached child and everything it started: the child leads its own process group, so a
 * signal to the negative pid reaches grandchildren too (a shell wrapper's real worker, say).
 */
export function killProcessTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone, or not a group leader (spawn failed): fall back to the child itself.
    try {
      child.kill(signal);
    } catch {}
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

const OUTPUT_LIMIT = 64 * 1024;

/**
 * Runs a command to completion in its own process group. On timeout the whole group is killed and
 * an `engine_timeout` EngineError is thrown; the caller decides what a non-zero exit means.
 */
export function runProcess(command: string, args: string[], options: { cwd?: string; timeoutMs: number; what: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // Keep only the tail: engines can be chatty, and the last lines say what went wrong.
    child.stdout.on('data', (d) => {
      stdout = (stdout + String(d)).slice(-OUTPUT_LIMIT);
    });
    child.stderr.on('data', (d) => {
      stderr = (stderr + String(d)).slice(-OUTPUT_LIMIT);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killProcessTree(child);
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new EngineError(`${options.what} could not be started (${error.message}).`, 'engine_unavailable'));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new EngineError(`${options.what} took longer than ${formatSeconds(options.timeoutMs)} and was stopped.`, 'engine_timeout'));
        return;
      }
      // The child is done; anything it left running in its group goes with it.
      killProcessTree(child);
      resolve({ stdout, stderr, code, signal });
    });
  });
}

export function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}
