import { describe, expect, it } from 'vitest';
import { cappedBackoffMs, InfrastructureError, infrastructureCause, isInfrastructureError, rememberEndpoint } from '../src/lib/infrastructure.js';

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
});
