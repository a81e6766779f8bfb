/**
 * Sends mutants (mutants.ts) through a running molvault's real API, as single uploads and as bulk
 * imports, and reports how each ended. Shared by test/fuzz.test.ts and `npm run fuzz` (bench/fuzz.ts).
 */
import type { Mutant } from './mutants.js';

export interface FuzzOutcome {
  name: string;
  seed: string;
  mutation: string;
  via: 'upload' | 'import';
  /** stored, rejected, skipped (a duplicate), failed, or what it was left in ("unfinished"). */
  state: string;
  code?: string;
  message?: string;
}

export interface FuzzReport {
  outcomes: FuzzOutcome[];
  /** Every answer of 500 or more: method, path, status, body. */
  serverErrors: { request: string; status: number; body: string }[];
}

export interface FuzzOptions {
  baseUrl: string;
  token: string;
  projectId: string;
  /** One in this many mutants goes as a single upload; the rest in bulk imports. */
  uploadEvery: number;
  /** Files per import request. */
  importSize: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Give up waiting (what is left counts as unfinished: a hang). */
  timeoutMs: number;
}

const FINISHED = new Set(['stored', 'rejected', 'failed', 'skipped']);

async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

export async function fuzzThroughApi(mutants: readonly Mutant[], options: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = { outcomes: [], serverErrors: [] };
  const auth = { authorization: `Bearer ${options.token}` };
  const deadline = Date.now() + options.timeoutMs;
  const call = async (request: string, init: RequestInit = {}) => {
    const [method, path] = request.split(' ');
    const response = await fetch(`${options.baseUrl}${path}`, { ...init, method, headers: { ...auth, ...(init.headers as Record<string, string>) } });
    const text = await response.text();
    if (response.status >= 500) report.serverErrors.push({ request, status: response.status, body: text.slice(0, 500) });
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: response.status, body };
  };
  const form = (files: readonly Mutant[]) => {
    const data = new FormData();
    for (const file of files) data.append('file', new Blob([new Uint8Array(file.content)]), file.name);
    return data;
  };
  const singles = mutants.filter((_, i) => i % options.uploadEvery === 0);
  const bulk = mutants.filter((_, i) => i % options.uploadEvery !== 0);
  const batches: Mutant[][] = [];
  for (let i = 0; i < bulk.length; i += options.importSize) batches.push(bulk.slice(i, i + options.importSize));

  const uploads: { mutant: Mutant; id?: string }[] = [];
  const imports: { files: Mutant[]; id?: string }[] = [];
  const record = (mutant: Mutant, via: FuzzOutcome['via'], state: string, error?: { code?: string; message?: string }) =>
    report.outcomes.push({ name: mutant.name, seed: mutant.seed, mutation: mutant.mutation, via, state, code: error?.code, message: error?.message });

  await inParallel([...batches.map((files) => ({ files })), ...singles.map((mutant) => ({ mutant }))], options.concurrency, async (job) => {
    if ('files' in job) {
      const answer = await call(`POST /v1/projects/${options.projectId}/imports`, { body: form(job.files) });
      if (answer.status === 202) imports.push({ files: job.files, id: answer.body.import.id });
      else for (const file of job.files) record(file, 'import', `refused ${answer.status}`, answer.body?.error);
      return;
    }
    const answer = await call(`POST /v1/projects/${options.projectId}/structures`, { body: form([job.mutant]) });
    if (answer.status === 202) uploads.push({ mutant: job.mutant, id: answer.body.upload.id });
    else record(job.mutant, 'upload', answer.status < 500 ? 'rejected' : `refused ${answer.status}`, answer.body?.error);
  });

  await inParallel(uploads, options.concurrency, async ({ mutant, id }) => {
    for (;;) {
      const { body } = await call(`GET /v1/uploads/${id}`);
      if (FINISHED.has(body?.state) && (body.state !== 'stored' || body.searchable)) {
        record(mutant, 'upload', body.state, body.error);
        return;
      }
      if (Date.now() > deadline) {
        record(mutant, 'upload', `unfinished (${body?.state})`);
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  await inParallel(imports, options.concurrency, async ({ files, id }) => {
    let state = '';
    while (Date.now() < deadline) {
      const { body } = await call(`GET /v1/imports/${id}?limit=1`);
      state = body?.state;
      if (state === 'completed' || state === 'failed') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const items: any[] = [];
    let cursor: string | undefined;
    do {
      const { body } = await call(`GET /v1/imports/${id}?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      items.push(...(body.items ?? []));
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    const byPosition = new Map(items.map((item) => [item.position, item]));
    files.forEach((file, position) => {
      const item = byPosition.get(position);
      const itemState = item?.state ?? 'missing';
      record(file, 'import', FINISHED.has(itemState) ? itemState : `unfinished (${itemState}, import ${state})`, item?.error);
    });
  });
  return report;
}

/**
 * What must never happen: a 5xx, an item failed (our fault) or never finished, a parse that hung
 * or crashed its thread, a refusal without a reason.
 */
export function fuzzFindings(report: FuzzReport): string[] {
  const findings = report.serverErrors.map((e) => `${e.request} answered ${e.status}: ${e.body}`);
  for (const o of report.outcomes) {
    const what = `${o.name} (${o.mutation} of ${o.seed}, by ${o.via})`;
    if (o.state === 'stored') continue;
    if (o.code === 'parse_aborted') {
      // The parser hung past its time limit or its thread died: refused, but a crash or hang of ours.
      findings.push(`${what} hung or crashed the parser: ${o.message}`);
      continue;
    }
    if (o.state === 'rejected' || o.state === 'skipped') {
      if (!o.message?.trim() || !o.code) findings.push(`${what} was ${o.state} without a reason`);
      continue;
    }
    findings.push(`${what} ended ${o.state}${o.code ? ` (${o.code}: ${o.message})` : ''}`);
  }
  return findings;
}

/** Outcomes counted by mutation and state, for the report. */
export function fuzzTable(report: FuzzReport): Record<string, Record<string, number>> {
  const table: Record<string, Record<string, number>> = {};
  for (const o of report.outcomes) {
    table[o.mutation] ??= {};
    table[o.mutation][o.state] = (table[o.mutation][o.state] ?? 0) + 1;
  }
  return table;
}

/** Refusal codes counted, for the report. */
export function fuzzCodes(report: FuzzReport): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const o of report.outcomes) if (o.state !== 'stored') codes[o.code ?? o.state] = (codes[o.code ?? o.state] ?? 0) + 1;
  return codes;
}
