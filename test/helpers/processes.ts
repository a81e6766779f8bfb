import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '../../bin/molvault.js');

/** A `molvault <role>` child process whose output is kept, line by line, to be read by the test. */
export interface MolvaultProcess {
  child: ChildProcess;
  /** Every line it wrote, stdout and stderr alike, in order. */
  lines: string[];
  /** The lines that are not a JSON object (a log must have none). */
  notJson(): string[];
  /** The parsed log lines whose `msg` matches. */
  logged(msg: RegExp): Record<string, unknown>[];
  /** Waits until a log line's `msg` matches (or the process exits, or the timeout passes). */
  waitForLog(msg: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts `bin/molvault.js <args>` with `env` over this process's environment (DATABASE_URL,
 * REDIS_URL, QUEUE_PREFIX, DATA_DIR are the caller's to give), as production runs it.
 */
export function startMolvault(args: string[], env: Record<string, string>): MolvaultProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const partial = { stdout: '', stderr: '' };
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.on('data', (chunk: Buffer) => {
      const text = partial[stream] + chunk.toString();
      const parts = text.split('\n');
      partial[stream] = parts.pop() ?? '';
      lines.push(...parts.filter((line) => line.trim() !== ''));
    });
  }
  const logged = (msg: RegExp) =>
    lines.map(parse).filter((entry): entry is Record<string, unknown> => !!entry && typeof entry.msg === 'string' && msg.test(entry.msg));
  return {
    child,
    lines,
    notJson: () => [...lines, partial.stdout, partial.stderr].filter((line) => line.trim() !== '' && !parse(line)),
    logged,
    async waitForLog(msg, timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [found] = logged(msg);
        if (found) return found;
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`molvault ${args.join(' ')} never logged ${msg} (exit code ${child.exitCode}):\n${lines.slice(-40).join('\n')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
