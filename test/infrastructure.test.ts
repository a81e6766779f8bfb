import { DriverException } from '@mikro-orm/core';
import { describe, expect, it } from 'vitest';
import {
  asPostgresFailure,
  cappedBackoffMs,
  InfrastructureError,
  infrastructureCause,
  infrastructureWaitOf,
  isInfrastructureError,
  rememberEndpoint,
} from '../src/lib/infrastructure.js';

/** The one place that tells a sick system from a bad file (src/lib/infrastructure.ts). */
describe('infrastructure errors', () => {
  const systemError = (code: string, message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { code, ...extra });

  it('names Postgres, Redis, a full disk and a dead worker, through wrapped causes and in failed-job messages', () => {
    rememberEndpoint('postgres', 'postgres://postgres@127.0.0.1:41111/molvault');
    rememberEndpoint('redis', 'redis://127.0.0.1:42222');
    expect(infrastructureCause(systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:41111', { port: 41111 }))).toBe('postgres');
    expect(infrastructureCause(new Error('wrapped', { cause: systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:42222') }))).toBe('redis');
    expect(infrastructureCause(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe('postgres');
    expect(infrastructureCause(Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' }))).toBe('postgres');
    expect(infrastructureCause(new Error('Connection terminated unexpectedly'))).toBe('postgres');
    // The postmaster killed under a query: the socket's reset, with no port, as MikroORM passes it on.
    expect(infrastructureCause(new DriverException(systemError('ECONNRESET', 'read ECONNRESET', { errno: -104, syscall: 'read' })))).toBe('postgres');
    expect(infrastructureCause(systemError('ECONNRESET', 'read ECONNRESET', { errno: -104, syscall: 'read' }))).toBe('storage');
    // The search's own pg pool says whose socket it was.
    expect(infrastructureCause(asPostgresFailure(systemError('ECONNRESET', 'read ECONNRESET', { errno: -104, syscall: 'read' })))).toBe('postgres');
    const statementError = Object.assign(new Error('syntax error at or near "x"'), { code: '42601' });
    expect(asPostgresFailure(statementError)).toBe(statementError);
    expect(infrastructureCause(systemError('ENOSPC', 'ENOSPC: no space left on device, write'))).toBe('disk');
    expect(infrastructureCause('ENOSPC: no space left on device, write')).toBe('disk');
    expect(infrastructureCause("Stream isn't writeable and enableOfflineQueue options is false")).toBe('redis');
    expect(infrastructureCause('job stalled more than allowable limit')).toBe('worker');
    const givenUp = new InfrastructureError('postgres', new Error('Connection terminated unexpectedly'));
    expect(infrastructureCause(givenUp.message)).toBe('postgres');
  });

  it('leaves the faults of a file, a request or our own code alone', () => {
    expect(isInfrastructureError(new Error('line 3: the atom record is too short'))).toBe(false);
    expect(isInfrastructureError(Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' }))).toBe(false);
    expect(isInfrastructureError(Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }))).toBe(false);
    expect(isInfrastructureError(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isInfrastructureError(systemError('ENOENT', 'ENOENT: no such file or directory'))).toBe(false);
    expect(isInfrastructureError(undefined)).toBe(false);
  });

  it('waits a doubling delay between retries, never more than the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 50].map((n) => cappedBackoffMs(n, 1000, 10_000))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('counts a job’s waits for the infrastructure, not its restarts after a stall or its own failures', () => {
    // First start: the first wait. After two waits: the third.
    expect(infrastructureWaitOf({ attemptsStarted: 1, attemptsMade: 0, stalledCounter: 0 })).toBe(1);
    expect(infrastructureWaitOf({ attemptsStarted: 3, attemptsMade: 0, stalledCounter: 0 })).toBe(3);
    // Started five times because four workers holding it were killed: its first wait, 1 s, not 16 s.
    expect(infrastructureWaitOf({ attemptsStarted: 5, attemptsMade: 0, stalledCounter: 4 })).toBe(1);
    expect(cappedBackoffMs(infrastructureWaitOf({ attemptsStarted: 5, attemptsMade: 0, stalledCounter: 4 }), 1000, 60_000)).toBe(1000);
    // One failure of its own, one stall, one wait before this start: the second wait.
    expect(infrastructureWaitOf({ attemptsStarted: 4, attemptsMade: 1, stalledCounter: 1 })).toBe(2);
    // Counters BullMQ has not recorded yet never make it less than the first.
    expect(infrastructureWaitOf({ attemptsStarted: 0, attemptsMade: 0 })).toBe(1);
  });
});
