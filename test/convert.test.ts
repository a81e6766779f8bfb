import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStructure } from '../src/formats/parse.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string) => fs.readFile(path.join(here, 'fixtures', name));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function upload(api: Client, projectId: string, name: string, content: Uint8Array | string) {
  const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content }, {}, { prefer: 'wait=30' });
  expect(response.status).toBe(201);
  return response.body.structure as { id: string; currentVersion: { sha256: string } };
}

async function download(api: Client, id: string, format: string, wait = 30) {
  const response = await api.raw(`/v1/structures/${id}/download?format=${format}`, wait ? { headers: { prefer: `wait=${wait}` } } : {});
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, bytes, json: () => JSON.parse(bytes.toString('utf8')) };
}

async function rows(stack: Stack, sql: string, params: unknown[] = []) {
  return stack.ctx.orm.em.fork().execute<Record<string, unknown>[]>(sql, params);
}

const scratchEntries = (stack: Stack) => fs.readdir(stack.ctx.config.engines.scratchDir).catch(() => [] as string[]);

describe('downloading a structure in another format (conversion jobs with gemmi and Open Babel)', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let projectId: string;
  let tmp: string;
  let engineRuns: string;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-convert-'));
    engineRuns = path.join(tmp, 'gemmi-runs');
    // gemmi itself, behind a wrapper that counts how often the engine really runs.
    const countingGemmi = path.join(tmp, 'gemmi');
    await fs.writeFile(countingGemmi, `#!/bin/sh\n[ "$1" = convert ] && echo run >> ${engineRuns}\nexec gemmi "$@"\n`, { mode: 0o755 });
    stack = await startStack({ env: { GEMMI_BIN: countingGemmi } });
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'conversions' })).body.id;
  });

  afterAll(async () => {
    await stack?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('converts PDB to mmCIF once: concurrent and later downloads get the same stored derivative', async () => {
    const pdb = await fixture('ngl_1crn.pdb');
    const structure = await upload(api, projectId, '1crn.pdb', pdb);
    const [first, second] = await Promise.all([download(api, structure.id, 'cif'), download(api, structure.id, 'cif')]);
    const third = await download(api, structure.id, 'cif', 0); // no waiting needed: it is cached now
    for (const response of [first, second, third]) {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('chemical/x-mmcif');
      expect(response.headers.get('content-disposition')).toBe(`attachment; filename="1crn.cif"; filename*=UTF-8''1crn.cif`);
      expect(response.headers.get('x-molvault-engine')).toMatch(/^gemmi \d+\.\d+/);
      expect(response.headers.get('etag')).toBe(`"${sha256(first.bytes)}"`);
      expect(response.bytes.equals(first.bytes)).toBe(true);
    }
    const outcome = await parseStructure(first.bytes.toString('latin1'), 'cif');
    expect(outcome.ok && outcome.summary.atoms).toBe(327);
    expect(first.headers.get('x-molvault-conversion-loss')).toBe('none');
    expect((await fs.readFile(engineRuns, 'utf8')).trim().split('\n')).toHaveLength(1);
    const derivations = await rows(stack, 'select engine, engine_version, blob_sha256, loss from derivations where source_blob_sha256 = ?', [
      structure.currentVersion.sha256,
    ]);
    expect(derivations).toHaveLength(1);
    expect(derivations[0]).toMatchObject({ engine: 'gemmi', blob_sha256: sha256(first.bytes) });
    expect(derivations[0].loss).toMatchObject({
      from: 'pdb',
      to: 'cif',
      lossy: false,
      kept: expect.arrayContaining(['atoms', 'models', 'chains', 'residues']),
    });
    expect(await scratchEntries(stack)).toEqual([]);
  });

  it('answers 202 with the job to follow, and the job result carries the engine and the loss report', async () => {
    const structure = await upload(api, projectId, 'imatinib.mol2', await fixture('chemfiles_imatinib.mol2'));
    const accepted = await download(api, structure.id, 'xyz', 0);
    expect(accepted.status).toBe(202);
    const jobId = accepted.json().job.id;
    expect(accepted.headers.get('location')).toBe(`/v1/jobs/${jobId}`);
    expect(accepted.json().conversion).toMatchObject({ from: 'mol2', to: 'xyz', engine: 'Open Babel' });
    let job: any;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      job = (await api.get(`/v1/jobs/${jobId}`)).body;
      if (job.state === 'completed' || job.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job).toMatchObject({ queue: 'convert', name: 'convert', state: 'completed' });
    expect(job.result).toMatchObject({ format: 'xyz', engine: 'openbabel', reused: false });
    // MOL2 → XYZ: the atoms survive, the bonds and partial charges do not.
    expect(job.result.loss.lossy).toBe(true);
    expect(job.result.loss.kept).toContain('atoms');
    const bonds = job.result.loss.changes.find((c: { property: string }) => c.property === 'bonds');
    expect(bonds).toMatchObject({ kind: 'lost', output: null, note: 'XYZ files cannot hold bonds.' });
    expect(bonds.source).toBeGreaterThan(30);
    const served = await download(api, structure.id, 'xyz', 0);
    expect(served.status).toBe(200);
    expect(served.headers.get('x-molvault-conversion-loss')).toContain(`bonds=${bonds.source}->none`);
    expect(served.headers.get('x-molvault-conversion-loss')).toContain('partialCharges=true->none');
  });

  it('keeps bonds and formal charges from SDF to MOL2 and says partial charges appeared', async () => {
    const structure = await upload(api, projectId, 'aspirin.sdf', await fixture('chemfiles_aspirin.sdf'));
    const response = await download(api, structure.id, 'mol2');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-molvault-engine')).toMatch(/^openbabel \d/);
    const derivation = (await rows(stack, 'select loss from derivations where source_blob_sha256 = ?', [structure.currentVersion.sha256]))[0];
    const loss = derivation.loss as { lossy: boolean; kept: string[]; changes: { property: string; kind: string }[] };
    expect(loss.kept).toEqual(expect.arrayContaining(['atoms', 'bonds']));
    // Open Babel computes Gasteiger charges for MOL2: an addition, not a loss.
    expect(loss.changes).toContainEqual(expect.objectContaining({ property: 'partialCharges', kind: 'added', source: null, output: true }));
    expect(loss.lossy).toBe(loss.changes.some((c) => c.kind !== 'added'));
  });

  it('answers 415 naming the engine that would make the format, or saying none would', async () => {
    const variant = `aspirin, another copy\n${(await fixture('chemfiles_aspirin.sdf')).toString().split('\n').slice(1).join('\n')}`;
    const structure = await upload(api, projectId, 'aspirin-2.sdf', variant);
    const toCif = await download(api, structure.id, 'cif', 0);
    expect(toCif.status).toBe(415);
    expect(toCif.json().error).toMatchObject({
      code: 'conversion_unavailable',
      message: 'Converting SDF to mmCIF needs ChimeraX, which is not installed on this server. Download the original (SDF) instead.',
      details: { from: 'sdf', to: 'cif', engines: ['ChimeraX'] },
    });
    const toBcif = await download(api, structure.id, 'bcif', 0);
    expect(toBcif.status).toBe(415);
    expect(toBcif.json().error.message).toMatch(/^No conversion engine molvault knows can turn SDF into BinaryCIF\./);
    expect((await rows(stack, 'select count(*)::int as n from derivations where source_blob_sha256 = ?', [structure.currentVersion.sha256]))[0].n).toBe(0);
  });

  it('charges a derivative as derived usage to each user who downloaded it, and to nobody else', async () => {
    const { allBlobReferencesSql } = await import('../src/services/quota/blobReferences.js');
    const derivedOf = async (userId: string) =>
      (await rows(stack, `select distinct blob_sha256 from (${allBlobReferencesSql()}) r where r.owner_id = ? and r.category = 'derived'`, [userId])).map(
        (r) => r.blob_sha256 as string,
      );
    const crambin = await fixture('ngl_1crn.pdb');
    const mine = await upload(api, projectId, 'shared-crambin.pdb', crambin);
    const converted = await download(api, mine.id, 'cif');
    expect(converted.status).toBe(200);
    const [derivative] = await rows(stack, 'select blob_sha256 from derivations where source_blob_sha256 = ? and format = ?', [
      mine.currentVersion.sha256,
      'cif',
    ]);
    expect(await derivedOf(user.id)).toContain(derivative.blob_sha256 as string);

    // Another user with the same bytes shares the cached derivative but pays for it only once they download it.
    const other = await userFactory(stack.ctx);
    const otherApi = client(stack.url, other.token);
    const otherProject = (await otherApi.post('/v1/projects', { name: 'other' })).body.id;
    const theirs = await upload(otherApi, otherProject, 'crambin.pdb', crambin);
    expect(await derivedOf(other.id)).toEqual([]);
    const before = (await otherApi.get('/v1/usage')).body.usedBytes;
    expect((await download(otherApi, theirs.id, 'cif')).status).toBe(200);
    expect(await derivedOf(other.id)).toEqual([derivative.blob_sha256 as string]);
    expect((await otherApi.get('/v1/usage')).body.usedBytes).toBe(before + converted.bytes.length);
  });
});

/**
 * ChimeraX cannot be installed here: CHIMERAX_BIN points at test/support/fakeChimeraX.mjs, a
 * long-lived stand-in that speaks ChimeraX's REST shape and can be told to hang or write garbage.
 */
describe('conversion failures through the API, with a stand-in for ChimeraX because ChimeraX cannot be installed here', () => {
  let stack: Stack;
  let api: Client;
  let projectId: string;
  let tmp: string;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-convert-fail-'));
    stack = await startStack({ env: { CHIMERAX_BIN: path.join(here, 'support', 'fakeChimeraX.mjs'), ENGINE_TIMEOUT_MS: '2000' } });
    const user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    projectId = (await api.post('/v1/projects', { name: 'failures' })).body.id;
  });

  afterAll(async () => {
    await stack?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  const withRemark = async (remark: string) => `REMARK 999 ${remark}\n${await fixture('ngl_1crn.pdb')}`;
  const blobCount = async () => (await rows(stack, 'select count(*)::int as n from blobs'))[0].n;

  it('prefers ChimeraX for what it handles', async () => {
    const structure = await upload(api, projectId, 'crambin.pdb', await fixture('ngl_1crn.pdb'));
    const response = await download(api, structure.id, 'cif');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-molvault-engine')).toBe('chimerax 0.0.1-molvault-stand-in');
  });

  it('fails a conversion whose output is not a structure, stores nothing and says which engine wrote it', async () => {
    const structure = await upload(api, projectId, 'garbage.pdb', await withRemark('FAKE_CHIMERAX_GARBAGE'));
    const blobsBefore = await blobCount();
    const response = await download(api, structure.id, 'cif');
    expect(response.status).toBe(422);
    const error = response.json().error;
    expect(error.code).toBe('conversion_failed');
    expect(error.message).toMatch(/^ChimeraX 0\.0\.1-molvault-stand-in wrote a mmCIF file that molvault cannot read: /);
    expect(await blobCount()).toBe(blobsBefore);
    expect((await rows(stack, 'select count(*)::int as n from derivations where source_blob_sha256 = ?', [structure.currentVersion.sha256]))[0].n).toBe(0);
    expect(await fs.readdir(path.join(stack.ctx.config.blobDir, 'tmp')).catch(() => [])).toEqual([]);
    expect(await scratchEntries(stack)).toEqual([]);
    // Asking again repeats the reason rather than running the engine again.
    const again = await download(api, structure.id, 'cif', 0);
    expect(again.status).toBe(422);
    expect(again.json().error.message).toBe(error.message);
  });

  it('fails a conversion that passes the timeout with a clear error, and the next conversion works', async () => {
    const pidFile = path.join(tmp, 'hang-child.pid');
    const structure = await upload(api, projectId, 'hang.pdb', await withRemark(`FAKE_CHIMERAX_HANG ${pidFile}`));
    const response = await download(api, structure.id, 'cif');
    expect(response.status).toBe(422);
    expect(response.json().error.message).toBe('ChimeraX (pdb → cif) took longer than 2 s and was stopped (at "open").');
    const child = Number(await fs.readFile(pidFile, 'utf8'));
    const gone = async () => {
      try {
        process.kill(child, 0);
      } catch {
        return true;
      }
      return /^\d+ \(.*\) Z/.test(await fs.readFile(`/proc/${child}/stat`, 'utf8').catch(() => ''));
    };
    for (let i = 0; i < 50 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await gone()).toBe(true);
    expect(await scratchEntries(stack)).toEqual([]);
    const next = await upload(api, projectId, 'after.pdb', await withRemark('AFTER THE HANG'));
    expect((await download(api, next.id, 'cif')).status).toBe(200);
  });
});
