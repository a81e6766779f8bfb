import { DriverException } from '@mikro-orm/core';
/**
 * A sick system is not a bad file. This is the one place that tells a failure of the machinery
 * molvault runs on (Postgres, Redis, the blob store, a full disk, a killed engine or worker) from
 * everything else. Such failures are retried for as long as it takes and never end a user's work as
 * `failed`; the API answers them with 503 instead of 500.
 */

/** Which part of the infrastructure failed; the API names it in its 503 and /readyz. */
export type InfrastructureCause = 'postgres' | 'redis' | 'storage' | 'disk' | 'engine' | 'worker';

/** The ports this process reaches Postgres and Redis on (rememberEndpoint), to name which one a refused connection was. */
const KNOWN_PORTS = new Map<InfrastructureCause, Set<number>>([
  ['postgres', new Set([5432])],
  ['redis', new Set([6379])],
]);

/** Remembers where Postgres or Redis is (a URL), so a refused connection to it is named after it. */
export function rememberEndpoint(service: 'postgres' | 'redis', url: string): void {
  try {
    const parsed = new URL(url);
    const port = Number(parsed.port || (service === 'postgres' ? 5432 : 6379));
    KNOWN_PORTS.get(service)?.add(port);
  } catch {
    // not a URL: nothing to remember
  }
}

/** Node's system error codes of a connection or a filesystem that is away, full or read-only. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
const DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'storage_full']);

/**
 * Postgres SQLSTATE classes that say the server, not the statement, is in trouble: 08 connection
 * exception, 53 insufficient resources (disk full, out of memory, too many connections), 57P01–57P05
 * admin or crash shutdown, cannot connect now, idle session timeout, 58 system error; and the two
 * serialization failures a retry resolves (40001, 40P01).
 */
function postgresCodeIsInfrastructure(code: string): boolean {
  return /^(08|53|58)/.test(code) || /^57P0[1-5]$/.test(code) || code === '40001' || code === '40P01';
}

/** Messages of drivers and of BullMQ that carry no code (pg, ioredis, MikroORM's pool, BullMQ's stall check). */
const MESSAGE_PATTERNS: [RegExp, InfrastructureCause][] = [
  [
    /Connection terminated|terminating connection|the database system is (starting up|shutting down|in recovery mode)|Client has encountered a connection error|timeout exceeded when trying to connect|Connection ended unexpectedly|server closed the connection unexpectedly|could not connect to (the )?(database|server)|connect ECONNREFUSED [^ ]*:(5432|543\d\d)\b/i,
    'postgres',
  ],
  [
    /Connection is closed|Stream isn't writeable|MaxRetriesPerRequest|READONLY You can't write|LOADING Redis|Missing lock for job|Lock mismatch for job/i,
    'redis',
  ],
  [/\bENOSPC\b|no space left on device|disk quota exceeded|\bEDQUOT\b|read-only file system|\bEROFS\b/i, 'disk'],
  [/job stalled more than allowable limit|worker (thread|process) (exited|died|was killed)|Terminating worker thread/i, 'worker'],
  [/engine (process )?(exited|was killed|crashed|died)|killed by signal SIG(KILL|TERM|SEGV)|exited with signal/i, 'engine'],
  [/\bECONNREFUSED\b|\bECONNRESET\b|\bETIMEDOUT\b|\bEHOSTUNREACH\b|socket hang up/i, 'storage'],
];

const MARKED = /\[infrastructure\] (postgres|redis|storage|disk|engine|worker)\b/;

function byMessage(message: string): InfrastructureCause | undefined {
  const marked = MARKED.exec(message);
  if (marked) return marked[1] as InfrastructureCause;
  return MESSAGE_PATTERNS.find(([pattern]) => pattern.test(message))?.[1];
}

/** The error, its cause chain and aggregated errors, each once. */
function* chain(error: unknown, seen = new Set<unknown>()): Generator<unknown> {
  if (error === null || error === undefined || seen.has(error)) return;
  seen.add(error);
  yield error;
  if (typeof error !== 'object') return;
  const record = error as { cause?: unknown; errors?: unknown[]; originalError?: unknown };
  yield* chain(record.cause, seen);
  yield* chain(record.originalError, seen);
  if (Array.isArray(record.errors)) for (const inner of record.errors) yield* chain(inner, seen);
}

/**
 * What failed, when it is the infrastructure rather than the work itself; undefined otherwise.
 * Takes an error (walking its causes) or a message (BullMQ keeps only a failed job's message).
 */
export function infrastructureCause(error: unknown): InfrastructureCause | undefined {
  for (const link of chain(error)) {
    if (typeof link === 'string') {
      const cause = byMessage(link);
      if (cause) return cause;
      continue;
    }
    if (typeof link !== 'object') continue;
    const record = link as { code?: unknown; message?: unknown; name?: unknown; errno?: unknown; address?: unknown; port?: unknown };
    const code = typeof record.code === 'string' ? record.code : undefined;
    if (code && DISK_CODES.has(code)) return 'disk';
    if (code && NETWORK_CODES.has(code)) {
      // MikroORM copies a driver's socket error (`read ECONNRESET`: no address, no port) into its
      // own exception, so the exception's class is what says the connection was the database's.
      if (link instanceof DriverException) return 'postgres';
      const message = typeof record.message === 'string' ? record.message : '';
      const port = typeof record.port === 'number' ? record.port : Number(/:(\d+)\b(?!.*:\d)/.exec(message)?.[1] ?? Number.NaN);
      for (const [service, ports] of KNOWN_PORTS) if (ports.has(port)) return service;
      return byMessage(message) ?? 'storage';
    }
    // A SQLSTATE: five characters, digits and capitals.
    if (code && /^[0-9A-Z]{5}$/.test(code) && postgresCodeIsInfrastructure(code)) return 'postgres';
    if (record.name === 'MaxRetriesPerRequestError') return 'redis';
    if (typeof record.message === 'string') {
      const cause = byMessage(record.message);
      if (cause) return cause;
    }
  }
  return undefined;
}

/** True when the failure is the infrastructure's, not the file's or the request's: retry it, never fail the work for it. */
export function isInfrastructureError(error: unknown): boolean {
  return infrastructureCause(error) !== undefined;
}

/** Marks a failure as the infrastructure's in its message, so a failed job's reason (a string in Redis) still says so. */
export const INFRASTRUCTURE_MARK = '[infrastructure]';

/** An infrastructure failure that outlasted its retry window; its message keeps the mark, so reconcile retries the work. */
export class InfrastructureError extends Error {
  constructor(
    readonly infrastructure: InfrastructureCause,
    cause: unknown,
  ) {
    super(`${INFRASTRUCTURE_MARK} ${infrastructure}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'InfrastructureError';
  }
}

/**
 * An error from a connection known to be Postgres's (a pg pool of our own, outside MikroORM): a
 * network failure there is Postgres's even when the socket's error names no port (`read
 * ECONNRESET`), which infrastructureCause alone would put on the file store.
 */
export function asPostgresFailure(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !NETWORK_CODES.has(code)) return error;
  return new InfrastructureError('postgres', error);
}

/** The retry delay for the n-th attempt (1-based): doubling from `baseMs`, never above `maxMs`. */
export function cappedBackoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

/**
 * Which wait for the infrastructure this is for a job (1-based): its earlier starts less those that
 * ended in a failure of its own (attemptsMade) or in a stall (its worker died: stalledCounter). A
 * job restarted after its workers were killed does not start an outage's backoff as if it had
 * already waited through several.
 */
export function infrastructureWaitOf(job: { attemptsStarted: number; attemptsMade: number; stalledCounter?: number }): number {
  return Math.max(0, job.attemptsStarted - 1 - job.attemptsMade - (job.stalledCounter ?? 0)) + 1;
}
