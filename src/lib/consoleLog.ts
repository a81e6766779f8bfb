import { format } from 'node:util';
import type { Logger } from './logger.js';

/**
 * Sends what libraries print with console.* (Mol*'s "Unknown spacegroup …", say) into the JSON log
 * instead of raw lines beside it: log and info as info, warn as warn, error as error, debug and
 * trace as debug, each tagged `source: "console"`.
 */
export function routeConsoleToLog(log: Logger): void {
  const to =
    (level: 'info' | 'warn' | 'error' | 'debug') =>
    (...args: unknown[]) =>
      log[level]({ source: 'console' }, format(...args));
  console.log = to('info');
  console.info = to('info');
  console.warn = to('warn');
  console.error = to('error');
  console.debug = to('debug');
  console.trace = to('debug');
}
