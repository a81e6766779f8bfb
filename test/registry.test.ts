import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { sniffFormat } from '../src/formats/sniff.js';
import { handleJob } from '../src/jobs/define.js';
import { checkRegistry, JOBS } from '../src/jobs/registry.js';
import { jobContract } from '../src/queue/contract.js';
import { JOB_CONTRACTS } from '../src/queue/jobs.js';

describe('the job registry', () => {
  it('accepts the real registry: every queue has a handler and every handler a queue', () => {
    const registry = checkRegistry(JOBS);
    expect([...registry.keys()].sort()).toEqual([
      'backup',
      'batch',
      'cleanup',
      'convert',
      'diff',
      'export',
      'gc',
      'importchunk',
      'importexpand',
      'importitem',
      'index',
      'ingest',
      'reconcile',
      'searchDrift',
      'snapshot',
      'usage',
      'validate',
      'verify',
    ]);
  });

  it('refuses to start when a queue has no handler', () => {
    const withoutIndex = JOBS.filter((job) => job.queue !== 'index');
    expect(() => checkRegistry(withoutIndex)).toThrow(/queue "index" has no job handler/);
  });

  it('refuses a handler whose queue does not exist, or a job without a handler', () => {
    const strayContract = jobContract({ name: 'stray', queue: 'nowhere' as never, data: z.object({}), jobId: () => 'stray-1' });
    const stray = handleJob(strayContract, { handle: async () => undefined });
    expect(() => checkRegistry([...JOBS, stray as never], [...JOB_CONTRACTS, strayContract as never])).toThrow(/names queue "nowhere", which does not exist/);
    const hollowContract = jobContract({ name: 'hollow', queue: 'index', data: z.object({}), jobId: () => 'hollow-1' });
    const hollow = { ...handleJob(hollowContract, { handle: async () => undefined }), handle: undefined };
    expect(() => checkRegistry([...JOBS, hollow as never], [...JOB_CONTRACTS, hollowContract as never])).toThrow(/job "hollow" has no handler/);
  });

  it('refuses to start when a contract has no handler, or a handler no contract', () => {
    const unhandled = jobContract({ name: 'unhandled', queue: 'cleanup', data: z.object({}), jobId: () => 'unhandled-1' });
    expect(() => checkRegistry(JOBS, [...JOB_CONTRACTS, unhandled as never])).toThrow(/job "unhandled" has no handler/);
    const withoutIngest = JOBS.filter((job) => job.name !== 'ingest');
    expect(() => checkRegistry(withoutIngest)).toThrow(/job "ingest" has no handler/);
    const orphan = handleJob(jobContract({ name: 'orphan', queue: 'cleanup', data: z.object({}), jobId: () => 'orphan-1' }), { handle: async () => undefined });
    expect(() => checkRegistry([...JOBS, orphan as never])).toThrow(/job "orphan" has a handler but no contract/);
  });

  it('has a contract for every handler, and binds each contract to exactly one handler', () => {
    expect(JOBS.map((job) => job.contract).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      [...JOB_CONTRACTS].sort((a, b) => a.name.localeCompare(b.name)),
    );
  });
});

describe('configuration', () => {
  it('fails fast with every problem listed', () => {
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'not a url', MAX_UPLOAD_BYTES: 'lots', QUEUE_CONCURRENCY: 'ingest=two' });
      expect.unreachable('loadConfig should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      for (const name of ['PORT', 'DATABASE_URL', 'MAX_UPLOAD_BYTES', 'QUEUE_CONCURRENCY']) expect(problems).toContain(name);
    }
  });

  it('reads sizes with units and per-queue concurrency', () => {
    const config = loadConfig({ MAX_UPLOAD_BYTES: '512MiB', QUEUE_CONCURRENCY: 'ingest=8, validate=1' });
    expect(config.maxUploadBytes).toBe(512 * 1024 * 1024);
    expect(config.concurrency).toMatchObject({ ingest: 8, validate: 1, snapshot: 4, index: 4, cleanup: 1 });
  });

  it('reads the embedded Postgres page cache, an empty value as unset, and refuses one too small', () => {
    expect(loadConfig({ EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: '2048' }).embeddedPostgresSharedBuffersMb).toBe(2048);
    expect(loadConfig({ EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: ' ' }).embeddedPostgresSharedBuffersMb).toBeUndefined();
    expect(() => loadConfig({ EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: '8' })).toThrow(/EMBEDDED_POSTGRES_SHARED_BUFFERS_MB/);
  });
});

describe('format sniffing', () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  it('tells formats apart by content', () => {
    expect(sniffFormat(bytes('data_1ABC\n_entry.id 1ABC\n')).format).toBe('cif');
    expect(sniffFormat(bytes('HEADER    HYDROLASE\nATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N\n')).format).toBe('pdb');
    expect(sniffFormat(bytes('@<TRIPOS>MOLECULE\nbenzene\n')).format).toBe('mol2');
    expect(sniffFormat(bytes('3\nwater\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n')).format).toBe('xyz');
    expect(sniffFormat(bytes('\n  RDKit          3D\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n')).format).toBe('mol');
    expect(sniffFormat(bytes('# ChimeraX Session version 3\n')).format).toBe('cxs');
  });
  it('explains what it does not recognise', () => {
    const png = sniffFormat(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]));
    expect(png).toEqual({ format: undefined, reason: 'The file is a PNG image, not a molecular structure.' });
    expect(sniffFormat(new Uint8Array()).format).toBeUndefined();
  });
});
