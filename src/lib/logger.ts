import { pino } from 'pino';

export type Logger = pino.Logger;

/** Servers log to stdout; one-shot commands log to stderr so their stdout stays machine-readable. */
export function createLogger(level: string, options: { name?: string; stderr?: boolean } = {}): Logger {
  return pino({ name: options.name ?? 'molvault', level, base: { pid: process.pid } }, pino.destination(options.stderr ? 2 : 1));
}
