import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobContext } from '../src/jobs/define.js';
import { exportHandler } from '../src/jobs/handlers/export.js';
import { cleanupJob } from '../src/queue/jobs.js';
import { type ExportManifest, exportManifest } from '../src/services/exports/manifest.js';
import { exportsReconciler, reconcile } from '../src/services/maintenance/reconcile.js';
import { readArchive } from './helpers/archives.js';
import { type Client, client, type TestUser, userFactory } from './helpers/factories.js';
import { runJob } from './helpers/jobs.js';
import { type Stack, startStack } from './helpers/stack.js';

const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, 'fixtures', name));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const today = () => new Date().toISOString().slice(0, 10);

interface Exported {
  id: string;
  state: string;
  size: number;
  sha256: string;
  files: number;
  archive: 'zip' | 'tar.gz';
  filename: string;
  problems: { code: string; message: string; structureId?: string; version?: number }[];
  [key: string]: unknown;
}

describe('exports: a project or a selection as a .zip or .tar.gz with manifest.json', () => {
  let stack: Stack;
  let user: TestUser;
  let api: Client;
  let otherApi: Client;
  let projectId: string;
  let pdb: Buffer;
  const ids: Record<'crambin' | 'aspirin' | 'imatinib' | 'crambinCif', string> = { crambin: '', aspirin: '', imatinib: '', crambinCif: '' };
  const crambinVersions: Buffer[] = [];

  async function upload(name: string, content: Uint8Array, fields: Record<string, string> = {}) {
    const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content }, fields, { prefer: 'wait=30' });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.structure.id as string;
  }

  beforeAll(async () => {
    // Schedules that do not fire during the test: it runs the cleanup job itself.
    stack = await startStack({ env: { CLEANUP_SCHEDULE: '0 0 1 1 *', GC_SCHEDULE: '0 0 1 1 *', USAGE_SCHEDULE: '0 0 1 1 *' } });
    user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
    otherApi = client(stack.url, (await userFactory(stack.ctx)).token);
    const project = await api.post('/v1/projects', {
      name: 'Kinase screen 2026',
      description: 'Hits of the spring screen',
      tags: ['screen', 'kinase'],
      metadata: { lab: 'Structural Biology 2', budget: 1200 },
    });
    projectId = project.body.id;
    pdb = await fixture('ngl_1crn.pdb');
    crambinVersions.push(pdb, Buffer.concat([pdb, Buffer.from('REMARK 999 REFINED\n')]), Buffer.concat([pdb, Buffer.from('REMARK 999 FINAL\n')]));
    ids.crambin = await upload('crambin.pdb', crambinVersions[0], {
      name: 'crambin',
      description: 'Crambin in three revisions',
      tags: 'xray,plant',
      metadata: JSON.stringify({ organism: 'Crambe hispanica', resolution: 1.5, refs: ['10.1073/pnas.81.19.6014'] }),
    });
    for (const [index, message] of ['refined', 'final'].entries()) {
      const response = await api.upload(
        `/v1/structures/${ids.crambin}/versions`,
        { name: `crambin-v${index + 2}.pdb`, content: crambinVersions[index + 1] },
        { message },
        { prefer: 'wait=30' },
      );
      expect(response.status).toBe(201);
    }
    expect((await api.patch(`/v1/structures/${ids.crambin}/versions/1`, { pinned: true })).status).toBe(200);
    ids.aspirin = await upload('aspirin.sdf', await fixture('chemfiles_aspirin.sdf'), { tags: 'ligand', metadata: JSON.stringify({ source: 'chemfiles' }) });
    ids.imatinib = await upload('imatinib.mol2', await fixture('chemfiles_imatinib.mol2'), { name: 'imatinib / Gleevec' });
    ids.crambinCif = await upload('1crn.cif', await fixture('ngl_1CRN.cif'), { name: 'crambin (mmCIF) ✓' });
  });
  afterAll(() => stack?.stop());

  async function exportNow(body: Record<string, unknown>, as: Client = api): Promise<Exported> {
    const response = await as.post('/v1/exports', body, { prefer: 'wait=60' });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.headers.get('location')).toBe(`/v1/exports/${response.body.export.id}`);
    expect(response.body.export.state).toBe('completed');
    return response.body.export;
  }

  async function download(exported: { id: string }, as: Client = api) {
    const response = await as.raw(`/v1/exports/${exported.id}/download`);
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, headers: response.headers, bytes, json: () => JSON.parse(bytes.toString('utf8')) };
  }

  /**
   * Downloads and reads an archive back: the manifest comes first and validates against the shared
   * schema, every other entry is listed in it once with the sha256 and size of its bytes, and every
   * exported original is byte for byte the blob molvault stores.
   */
  async function openExport(exported: Exported) {
    const response = await download(exported);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(exported.archive === 'zip' ? 'application/zip' : 'application/gzip');
    expect(response.headers.get('content-length')).toBe(String(response.bytes.length));
    // RFC 6266: the ASCII name, and the exact name as filename* (test/contentDisposition.test.ts covers the rules).
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="${exported.filename}"; filename*=UTF-8''${encodeURIComponent(exported.filename)}`,
    );
    expect(response.headers.get('etag')).toBe(`"${sha256(response.bytes)}"`);
    expect(exported.sha256).toBe(sha256(response.bytes));
    expect(exported.size).toBe(response.bytes.length);
    if (process.env.EXPORT_TEST_DUMP)
      await fs.writeFile(path.join(process.env.EXPORT_TEST_DUMP, exported.filename.replace(/(\.tar\.gz|\.zip)$/, `-${exported.id}$1`)), response.bytes);
    const entries = await readArchive(response.bytes, exported.archive);
    if (exported.archive === 'tar.gz') {
      // The standard tool reads it too, with the same entries in the same order.
      const listed = await new Promise<string>((resolve, reject) => {
        const child = execFile('tar', ['-tzf', '-'], (error, stdout) => (error ? reject(error) : resolve(stdout)));
        child.stdin?.end(response.bytes);
      });
      expect(listed.trim().split('\n')).toEqual(entries.map((e) => e.name));
    }
    expect(entries[0].name).toBe('manifest.json');
    expect(entries).toHaveLength(exported.files);
    const manifest: ExportManifest = exportManifest.parse(JSON.parse(entries[0].bytes.toString('utf8')));
    expect(manifest.exportId).toBe(exported.id);
    const files = new Map(entries.slice(1).map((entry) => [entry.name, entry.bytes]));
    expect(files.size).toBe(entries.length - 1); // paths are unique
    expect(manifest.files.map((f) => f.path).sort()).toEqual([...files.keys()].sort());
    for (const listed of manifest.files) {
      const bytes = files.get(listed.path) as Buffer;
      expect(sha256(bytes), listed.path).toBe(listed.sha256);
      expect(bytes.length).toBe(listed.size);
      expect(listed.path).toMatch(/^structures\/[A-Za-z0-9._-]+--[0-9a-f-]{8,36}\/v\d+\.[a-z0-9]+$/);
    }
    for (const structure of manifest.structures) {
      const numbers = structure.versions.map((v) => v.number);
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      for (const version of structure.versions) {
        expect(manifest.files).toContainEqual({ path: version.path, size: version.size, sha256: version.sha256 });
        expect(version.path.endsWith(`/v${version.number}.${version.format}`)).toBe(true);
        if (!version.conversion) {
          expect(version.sha256).toBe(version.originalSha256);
          const stored = await fs.readFile(stack.ctx.blobs.location(version.originalSha256));
          expect(stored.equals(files.get(version.path) as Buffer)).toBe(true);
        }
      }
    }
    return { manifest, files, bytes: response.bytes };
  }

  const structureIn = (manifest: ExportManifest, id: string) => {
    const found = manifest.structures.find((s) => s.id === id);
    if (!found) throw new Error(`structure ${id} is not in the manifest`);
    return found;
  };

  it('exports the current version of every structure of a project as a zip, with the project, names, tags and metadata', async () => {
    const exported = await exportNow({ projectId });
    expect(exported).toMatchObject({ format: 'original', versions: 'current', archive: 'zip', projectId, files: 5, problems: [] });
    expect(exported.filename).toBe(`Kinase-screen-2026-${today()}.zip`);
    const { manifest } = await openExport(exported);
    expect(manifest.project).toEqual({
      id: projectId,
      name: 'Kinase screen 2026',
      description: 'Hits of the spring screen',
      tags: ['screen', 'kinase'],
      metadata: { lab: 'Structural Biology 2', budget: 1200 },
    });
    expect(manifest).toMatchObject({ format: 'original', versions: 'current' });
    expect(manifest.structures.map((s) => s.id)).toEqual([ids.crambin, ids.aspirin, ids.imatinib, ids.crambinCif]);
    const crambin = structureIn(manifest, ids.crambin);
    const current = (await api.get(`/v1/structures/${ids.crambin}`)).body;
    expect(crambin).toMatchObject({
      name: 'crambin',
      description: 'Crambin in three revisions',
      kind: 'macromolecule',
      tags: ['xray', 'plant'],
      metadata: { organism: 'Crambe hispanica', resolution: 1.5, refs: ['10.1073/pnas.81.19.6014'] },
      createdAt: current.createdAt,
    });
    expect(crambin.versions).toEqual([
      {
        number: 3,
        path: `structures/crambin--${ids.crambin.slice(0, 8)}/v3.pdb`,
        format: 'pdb',
        size: crambinVersions[2].length,
        sha256: sha256(crambinVersions[2]),
        originalFormat: 'pdb',
        originalSha256: current.currentVersion.sha256,
        filename: 'crambin-v3.pdb',
        message: 'final',
        pinned: false,
        current: true,
        createdAt: current.currentVersion.createdAt,
        author: current.currentVersion.author,
        conversion: null,
      },
    ]);
    expect(crambin.relationships).toEqual([]);
    expect(structureIn(manifest, ids.aspirin)).toMatchObject({ kind: 'small-molecule', tags: ['ligand'], metadata: { source: 'chemfiles' } });
    expect(structureIn(manifest, ids.imatinib).versions[0].path).toBe(`structures/imatinib_Gleevec--${ids.imatinib.slice(0, 8)}/v1.mol2`);
    expect(structureIn(manifest, ids.crambinCif).versions[0].path).toBe(`structures/crambin_mmCIF--${ids.crambinCif.slice(0, 8)}/v1.cif`);
  });

  it('exports every version as a tar.gz, oldest first, with messages, pins and the current mark', async () => {
    const exported = await exportNow({ projectId, versions: 'all', archive: 'tar.gz' });
    expect(exported).toMatchObject({ archive: 'tar.gz', versions: 'all', files: 7 });
    expect(exported.filename).toBe(`Kinase-screen-2026-${today()}.tar.gz`);
    const { manifest, files } = await openExport(exported);
    const crambin = structureIn(manifest, ids.crambin);
    const stored = (await api.get(`/v1/structures/${ids.crambin}/versions`)).body.items.reverse();
    expect(crambin.versions.map((v) => [v.number, v.pinned, v.current, v.message, v.filename])).toEqual([
      [1, true, false, null, 'crambin.pdb'],
      [2, false, false, 'refined', 'crambin-v2.pdb'],
      [3, false, true, 'final', 'crambin-v3.pdb'],
    ]);
    crambin.versions.forEach((version, index) => {
      expect(version.sha256).toBe(stored[index].sha256);
      expect(version.createdAt).toBe(stored[index].createdAt);
      expect((files.get(version.path) as Buffer).equals(crambinVersions[index])).toBe(true);
    });
    for (const id of [ids.aspirin, ids.imatinib, ids.crambinCif]) expect(structureIn(manifest, id).versions).toHaveLength(1);
  });

  it('converts to a target format through the convert queue (gemmi), and keeps what no engine converts in its own format, saying so', async () => {
    const exported = await exportNow({ projectId, versions: 'all', format: 'cif' });
    const { manifest, files } = await openExport(exported);
    expect(manifest.format).toBe('cif');
    const crambin = structureIn(manifest, ids.crambin);
    for (const version of crambin.versions) {
      expect(version).toMatchObject({ format: 'cif', originalFormat: 'pdb', conversion: { engine: 'gemmi' } });
      expect(version.conversion?.engineVersion).toMatch(/^\d+\.\d+/);
      expect(version.path).toMatch(/\/v\d\.cif$/);
      expect(version.sha256).not.toBe(version.originalSha256);
      expect((files.get(version.path) as Buffer).subarray(0, 5).toString()).toBe('data_');
      // The cached derivative the convert job stored is what went into the archive.
      const [derivation] = await stack.ctx.orm.em
        .fork()
        .execute<{ blob_sha256: string }[]>(`select blob_sha256 from derivations where source_blob_sha256 = ? and format = 'cif'`, [version.originalSha256]);
      expect(derivation.blob_sha256).toBe(version.sha256);
    }
    // Already mmCIF: exported as stored, no conversion, no problem.
    expect(structureIn(manifest, ids.crambinCif).versions[0]).toMatchObject({ format: 'cif', conversion: null });
    // Small molecules cannot become mmCIF with the engines installed: kept as they are, and listed.
    expect(structureIn(manifest, ids.aspirin).versions[0]).toMatchObject({ format: 'sdf', originalFormat: 'sdf', conversion: null });
    expect(structureIn(manifest, ids.imatinib).versions[0]).toMatchObject({ format: 'mol2', conversion: null });
    expect(exported.problems.map((p) => [p.structureId, p.version, p.code])).toEqual([
      [ids.aspirin, 1, 'conversion_unavailable'],
      [ids.imatinib, 1, 'conversion_unavailable'],
    ]);
    expect(exported.problems[0].message).toMatch(/^aspirin v1 stays SDF: .*mmCIF/);
  });

  it('exports a selection (Open Babel converts MOL2 to SDF); a selection in one project names it, one across projects does not', async () => {
    const exported = await exportNow({ structureIds: [ids.imatinib, ids.aspirin], format: 'sdf', archive: 'tar.gz' });
    expect(exported).toMatchObject({ projectId: null, structureIds: [ids.imatinib, ids.aspirin], files: 3, problems: [] });
    expect(exported.filename).toBe(`Kinase-screen-2026-${today()}.tar.gz`);
    const { manifest, files } = await openExport(exported);
    expect(manifest.project?.id).toBe(projectId);
    expect(manifest.structures.map((s) => s.id)).toEqual([ids.aspirin, ids.imatinib]); // oldest first
    const imatinib = structureIn(manifest, ids.imatinib).versions[0];
    expect(imatinib).toMatchObject({ format: 'sdf', originalFormat: 'mol2', conversion: { engine: 'openbabel' } });
    expect((files.get(imatinib.path) as Buffer).toString()).toContain('M  END');
    expect(structureIn(manifest, ids.aspirin).versions[0]).toMatchObject({ format: 'sdf', conversion: null });

    const elsewhere = (await api.post('/v1/projects', { name: 'elsewhere' })).body.id;
    const lone = await api.upload(
      `/v1/projects/${elsewhere}/structures`,
      { name: 'insertion.pdb', content: await fixture('chemfiles_insertion-code.pdb') },
      {},
      { prefer: 'wait=30' },
    );
    const across = await exportNow({ structureIds: [ids.crambin, lone.body.structure.id] });
    expect(across.filename).toBe(`molvault-export-${today()}.zip`);
    const opened = await openExport(across);
    expect(opened.manifest.project).toBeNull();
    expect(opened.manifest.structures).toHaveLength(2);
  });

  it('answers 202 without Prefer: wait, and the export, its job and its list are readable by their owner only', async () => {
    const accepted = await api.post('/v1/exports', { projectId, archive: 'zip' });
    expect(accepted.status).toBe(202);
    const { id, jobId } = accepted.body.export;
    expect(accepted.body.export).toEqual({ id, state: 'pending', jobId: `export-${id}` });
    expect(accepted.headers.get('location')).toBe(`/v1/exports/${id}`);
    let current = (await api.get(`/v1/exports/${id}`)).body;
    for (let i = 0; i < 600 && current.state !== 'completed'; i++) {
      expect(['pending', 'running']).toContain(current.state);
      await new Promise((r) => setTimeout(r, 100));
      current = (await api.get(`/v1/exports/${id}`)).body;
    }
    expect(current).toMatchObject({ state: 'completed', files: 5, downloadUrl: `/v1/exports/${id}/download` });
    expect(Date.parse(current.expiresAt) - Date.parse(current.finishedAt)).toBe(stack.ctx.config.exportRetentionMs);
    const job = await api.get(`/v1/jobs/${jobId}`);
    expect(job.body).toMatchObject({ queue: 'export', state: 'completed', progress: { done: 5, total: 5 } });
    expect((await otherApi.get(`/v1/jobs/${jobId}`)).status).toBe(404);
    expect((await otherApi.get(`/v1/exports/${id}`)).status).toBe(404);
    expect((await download({ id }, otherApi)).status).toBe(404);
    expect((await otherApi.delete(`/v1/exports/${id}`)).status).toBe(404);
    expect((await otherApi.get('/v1/exports')).body.items).toEqual([]);
    const page = await api.get('/v1/exports?limit=1');
    expect(page.body.items.map((e: { id: string }) => e.id)).toEqual([id]);
    const next = await api.get(`/v1/exports?limit=100&cursor=${page.body.nextCursor}`);
    expect(next.body.items.length).toBeGreaterThan(0);
    expect(next.body.items.map((e: { id: string }) => e.id)).not.toContain(id);
  });

  it('refuses what it cannot export with the right status and a sentence, and keeps no row for it', async () => {
    const count = async () => Number((await stack.ctx.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from export_archives'))[0].n);
    const before = await count();
    const both = await api.post('/v1/exports', { projectId, structureIds: [ids.crambin] });
    expect(both.status).toBe(400);
    expect(both.body.error).toMatchObject({ code: 'export_scope' });
    expect(both.body.error.message).toMatch(/exactly one of "projectId" .* or "structureIds"/);
    expect((await api.post('/v1/exports', {})).body.error.code).toBe('export_scope');
    const format = await api.post('/v1/exports', { projectId, format: 'png' });
    expect(format.status).toBe(400);
    expect(format.body.error.message).toMatch(/format: must be "original" or one of pdb, cif, bcif, sdf, mol, mol2, xyz, cxs/);
    expect((await api.post('/v1/exports', { projectId, archive: 'rar' })).body.error.message).toMatch(/archive: must be "zip" or "tar.gz"/);
    expect((await api.post('/v1/exports', { projectId, versions: 'some' })).status).toBe(400);
    expect((await api.post('/v1/exports', { structureIds: [] })).body.error.message).toMatch(/must name at least one structure/);
    expect((await api.post('/v1/exports', { structureIds: ['crambin'] })).status).toBe(400);

    const foreignProject = await otherApi.post('/v1/exports', { projectId });
    expect(foreignProject.status).toBe(404);
    expect(foreignProject.body.error.message).toBe('No project with that id exists, or it is not yours.');
    const foreignSelection = await otherApi.post('/v1/exports', { structureIds: [ids.aspirin] });
    expect(foreignSelection.status).toBe(404);
    expect(foreignSelection.body.error.details).toEqual({ missing: [ids.aspirin] });

    const trashed = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'multi.pdb', content: await fixture('ngl_multi-models-example.pdb') },
      {},
      { prefer: 'wait=30' },
    );
    const trashedId = trashed.body.structure.id;
    expect((await api.delete(`/v1/structures/${trashedId}`)).status).toBe(204);
    const inTrash = await api.post('/v1/exports', { structureIds: [ids.aspirin, trashedId] });
    expect(inTrash.status).toBe(409);
    expect(inTrash.body.error).toMatchObject({ code: 'structure_in_trash', details: { trashed: [trashedId] } });
    expect(await count()).toBe(before);
    // A project export leaves trashed structures out.
    const exported = await exportNow({ projectId });
    expect((await openExport(exported)).manifest.structures.map((s) => s.id)).not.toContain(trashedId);
  });

  it('says 409 while an export is unfinished or failed, and refuses an export past the quota with 507, leaving no archive', async () => {
    const quotaUser = await userFactory(stack.ctx);
    const quotaApi = client(stack.url, quotaUser.token);
    const project = (await quotaApi.post('/v1/projects', { name: 'tight' })).body.id;
    const stored = await quotaApi.upload(`/v1/projects/${project}/structures`, { name: '1crn.pdb', content: pdb }, {}, { prefer: 'wait=30' });
    expect(stored.status).toBe(201);
    const em = stack.ctx.orm.em.fork();
    const setQuota = async (spare: number) => {
      const used = (await quotaApi.get('/v1/usage')).body.usedBytes;
      await em.execute('update users set quota_bytes = ? where id = ?', [used + spare, quotaUser.id]);
    };

    // Clearly too big: even a tenfold compression would not fit it.
    await setQuota(1000);
    const refused = await quotaApi.post('/v1/exports', { projectId: project });
    expect(refused.status).toBe(507);
    expect(refused.body.error.code).toBe('quota_exceeded');
    expect(refused.body.error.message).toMatch(/^This export needs at least .* export archives count against your quota/);
    expect(refused.body.error.details).toMatchObject({ requestedBytes: Math.ceil(pdb.length / 10) });

    // Fits the estimate but not as written: the job checks the real archive before keeping it.
    await setQuota(Math.ceil(pdb.length / 10) + 100);
    const late = await quotaApi.post('/v1/exports', { projectId: project }, { prefer: 'wait=60' });
    expect(late.status).toBe(507);
    expect(late.body.error.code).toBe('quota_exceeded');
    const failed = (await quotaApi.get(`/v1/exports/${late.body.error.details.exportId}`)).body;
    expect(failed).toMatchObject({ state: 'failed', size: null, downloadUrl: null, error: { code: 'quota_exceeded' } });
    const failedDownload = await download(failed, quotaApi);
    expect(failedDownload.status).toBe(409);
    expect(failedDownload.json().error.code).toBe('export_failed');
    expect(
      await em.execute(
        `select 1 from blobs where media_type in ('application/zip', 'application/gzip') and sha256 not in (select blob_sha256 from export_archives where blob_sha256 is not null)`,
      ),
    ).toEqual([]);
    expect(await fs.readdir(path.join(stack.ctx.config.blobDir, 'tmp')).catch(() => [])).toEqual([]);
    expect((await quotaApi.get('/v1/usage')).body.breakdown.exports).toBe(0);

    // Still being written: no archive yet.
    await setQuota(10_000_000);
    await stack.ctx.queues.export.pause();
    try {
      const pending = await quotaApi.post('/v1/exports', { projectId: project });
      expect(pending.status).toBe(202);
      const notReady = await download(pending.body.export, quotaApi);
      expect(notReady.status).toBe(409);
      expect(notReady.json().error).toMatchObject({ code: 'export_not_ready' });
      expect((await quotaApi.delete(`/v1/exports/${pending.body.export.id}`)).status).toBe(204);
      expect(await stack.ctx.queues.export.getJob(pending.body.export.jobId)).toBeUndefined();
    } finally {
      await stack.ctx.queues.export.resume();
    }
  });

  it('charges an archive as exports until it expires; the cleanup job then deletes it (dry run first), download says 410 and usage drops', async () => {
    const em = stack.ctx.orm.em.fork();
    const usageBefore = (await api.get('/v1/usage')).body;
    const exported = await exportNow({ projectId, archive: 'tar.gz' });
    const usageWith = (await api.get('/v1/usage')).body;
    expect(usageWith.breakdown.exports).toBe(usageBefore.breakdown.exports + exported.size);
    expect(usageWith.usedBytes).toBe(usageBefore.usedBytes + exported.size);
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toMatch(/molvault_exports\{state="completed"\} [1-9]/);
    const blobFile = stack.ctx.blobs.location(exported.sha256);
    await fs.access(blobFile);

    await em.execute('update export_archives set expires_at = ? where id = ?', [new Date(Date.now() - 60_000), exported.id]);
    const gone = await download(exported);
    expect(gone.status).toBe(410);
    expect(gone.json().error.code).toBe('export_expired');

    const step = (report: any) => report.steps.find((s: any) => s.name === 'expired exports');
    const dry = await runJob(stack.ctx, cleanupJob, { dryRun: true, stamp: 'exports-dry' });
    expect(step(dry)).toMatchObject({ removed: 1, bytesFreed: exported.size });
    await fs.access(blobFile); // a dry run changes nothing
    expect((await api.get(`/v1/exports/${exported.id}`)).body.state).toBe('completed');

    const real = await runJob(stack.ctx, cleanupJob, { stamp: 'exports-real' });
    expect(step(real)).toMatchObject({ removed: 1, bytesFreed: exported.size });
    await expect(fs.access(blobFile)).rejects.toThrow();
    expect(await em.execute('select 1 from blobs where sha256 = ?', [exported.sha256])).toEqual([]);
    const after = (await api.get(`/v1/exports/${exported.id}`)).body;
    expect(after).toMatchObject({ state: 'expired', sha256: null, downloadUrl: null });
    const expired = await download(exported);
    expect(expired.status).toBe(410);
    expect(expired.json().error.message).toMatch(/^This export expired on .* and its archive has been deleted; ask for a new export/);
    const usageAfter = (await api.get('/v1/usage')).body;
    expect(usageAfter.breakdown.exports).toBe(usageBefore.breakdown.exports);
    expect(usageAfter.usedBytes).toBe(usageBefore.usedBytes);
    expect(step(await runJob(stack.ctx, cleanupJob, { stamp: 'exports-again' })).removed).toBe(0);
  });

  it('deletes an export and its archive on request', async () => {
    const usageBefore = (await api.get('/v1/usage')).body.usedBytes;
    const exported = await exportNow({ structureIds: [ids.aspirin] });
    expect((await api.get('/v1/usage')).body.usedBytes).toBe(usageBefore + exported.size);
    expect((await api.delete(`/v1/exports/${exported.id}`)).status).toBe(204);
    expect((await api.get(`/v1/exports/${exported.id}`)).status).toBe(404);
    await expect(fs.access(stack.ctx.blobs.location(exported.sha256))).rejects.toThrow();
    expect((await api.get('/v1/usage')).body.usedBytes).toBe(usageBefore);
  });

  describe('the export job delivered more than once', () => {
    /** Runs the handler as a worker would, on the export's own (waiting) job. */
    async function handle(exportId: string) {
      const job = await stack.ctx.queues.export.getJob(`export-${exportId}`);
      if (!job) throw new Error('no job');
      const workers = stack.workers as NonNullable<Stack['workers']>;
      const ctx: JobContext = { ...stack.ctx, cpu: workers.cpu, engines: workers.engines, em: stack.ctx.orm.em.fork(), job };
      return exportHandler.handle({ exportId, ownerId: user.id }, ctx);
    }
    async function state(exportId: string) {
      const em = stack.ctx.orm.em.fork();
      const [row] = await em.execute<any[]>('select state, blob_sha256, size, file_count, problems, error from export_archives where id = ?', [exportId]);
      const archives = await em.execute<any[]>(`select sha256 from blobs where media_type in ('application/zip', 'application/gzip') order by sha256`);
      const files = (await fs.readdir(path.join(stack.ctx.config.blobDir, 'sha256'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name));
      const temp = await fs.readdir(path.join(stack.ctx.config.blobDir, 'tmp')).catch(() => []);
      return { row, archives, files: files.length, temp };
    }
    /** An export accepted while no worker takes export jobs, so the test can run its job by hand. */
    async function pendingExport(body: Record<string, unknown>) {
      const response = await api.post('/v1/exports', body);
      expect(response.status).toBe(202);
      return response.body.export.id as string;
    }

    beforeAll(() => stack.ctx.queues.export.pause());
    afterAll(() => stack.ctx.queues.export.resume());

    it('a second run of a completed export changes nothing; two at once make one archive', async () => {
      const first = await pendingExport({ projectId, versions: 'all', archive: 'zip' });
      const result = await handle(first);
      expect(result).toMatchObject({ exportId: first, files: 7 });
      const once = await state(first);
      expect(once.row).toMatchObject({ state: 'completed', blob_sha256: (result as { sha256: string }).sha256, file_count: 7, error: null });
      expect(await handle(first)).toMatchObject({ skipped: 'the export is completed' });
      expect(await state(first)).toEqual(once);

      const second = await pendingExport({ projectId, versions: 'all', archive: 'tar.gz' });
      const results = await Promise.all([handle(second), handle(second)]);
      const after = await state(second);
      expect(after.row.state).toBe('completed');
      expect(after.archives).toHaveLength(once.archives.length + 1);
      expect(after.files).toBe(once.files + 1);
      expect(after.temp).toEqual([]);
      // Each run wrote the same bytes (fixed entry times): the one that lost the race found the work done.
      expect(results.map((r) => (r as { sha256?: string }).sha256 ?? null).filter(Boolean)).toContain(after.row.blob_sha256);
    });

    it('an export whose job Redis lost is enqueued again by reconcile (Postgres is the record)', async () => {
      const exportId = await pendingExport({ structureIds: [ids.aspirin] });
      await (await stack.ctx.queues.export.getJob(`export-${exportId}`))?.remove();
      const report = await reconcile({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, exportsReconciler, 0);
      expect(report.reenqueued).toEqual([{ subject: exportId, job: `export-${exportId}` }]);
      expect(await handle(exportId)).toMatchObject({ exportId, files: 2 });
      // Finished: nothing left for reconcile to do.
      expect((await reconcile({ ...stack.ctx, em: stack.ctx.orm.em.fork() }, exportsReconciler, 0)).examined).toBe(0);
    });

    it('a run that fails mid-write leaves no archive and no temp file, and the retry starts over', async () => {
      const exportId = await pendingExport({ structureIds: [ids.aspirin, ids.crambinCif], archive: 'tar.gz' });
      const before = await state(exportId);
      // The second file cannot be read (a directory stands where its blob should be).
      const cifBlob = stack.ctx.blobs.location(sha256(await fixture('ngl_1CRN.cif')));
      await fs.rename(cifBlob, `${cifBlob}.aside`);
      await fs.mkdir(cifBlob);
      try {
        await expect(handle(exportId)).rejects.toThrow(/EISDIR/);
      } finally {
        await fs.rmdir(cifBlob);
        await fs.rename(`${cifBlob}.aside`, cifBlob);
      }
      const failedOnce = await state(exportId);
      expect(failedOnce.row).toMatchObject({ state: 'running', blob_sha256: null, error: null });
      expect(failedOnce.archives).toEqual(before.archives);
      expect(failedOnce.temp).toEqual([]);
      expect(await handle(exportId)).toMatchObject({ exportId, files: 3 });
      expect((await state(exportId)).row.state).toBe('completed');
    });
  });
});

describe('exports when a conversion fails', () => {
  let stack: Stack;
  let api: Client;
  let tmp: string;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-exports-'));
    // Open Babel that reports its version but converts nothing, as a broken install would.
    const brokenObabel = path.join(tmp, 'obabel');
    await fs.writeFile(brokenObabel, '#!/bin/sh\n[ "$1" = -V ] && exec obabel -V\necho "0 molecules converted" >&2\nexit 1\n', { mode: 0o755 });
    stack = await startStack({ env: { OBABEL_BIN: brokenObabel } });
    const user = await userFactory(stack.ctx);
    api = client(stack.url, user.token);
  });
  afterAll(async () => {
    await stack?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('exports the version in its own format and names the failure among the problems', async () => {
    const projectId = (await api.post('/v1/projects', { name: 'broken engine' })).body.id;
    const stored = await api.upload(
      `/v1/projects/${projectId}/structures`,
      { name: 'imatinib.mol2', content: await fixture('chemfiles_imatinib.mol2') },
      {},
      { prefer: 'wait=30' },
    );
    expect(stored.status).toBe(201);
    const response = await api.post('/v1/exports', { projectId, format: 'sdf' }, { prefer: 'wait=60' });
    expect(response.status).toBe(200);
    const exported = response.body.export;
    expect(exported.state).toBe('completed');
    expect(exported.problems).toEqual([
      {
        code: 'conversion_failed',
        message: expect.stringMatching(/^imatinib v1 stays MOL2: Open Babel \(mol2 → sdf\) converted nothing/),
        structureId: stored.body.structure.id,
        version: 1,
      },
    ]);
    const archive = Buffer.from(await (await api.raw(`/v1/exports/${exported.id}/download`)).arrayBuffer());
    const entries = await readArchive(archive, 'zip');
    const manifest = exportManifest.parse(JSON.parse(entries[0].bytes.toString('utf8')));
    expect(manifest.structures[0].versions[0]).toMatchObject({ format: 'mol2', originalFormat: 'mol2', conversion: null });
    expect(entries[1].bytes.equals(await fixture('chemfiles_imatinib.mol2'))).toBe(true);
  });
});
