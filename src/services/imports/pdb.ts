import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImportItemError } from '../../entities/ImportItem.js';
import { formatBytes } from '../../lib/bytes.js';
import type { Staging } from '../../storage/staging.js';
import { type StagedFile, StagingLimitError, stageStream } from './stage.js';

/** `1crn` → `1CRN`; extended ids `pdb_00001crn` → lower case. Undefined when it is not a PDB id. */
export function normalizePdbId(raw: string): string | undefined {
  const id = raw.trim();
  if (/^[0-9][A-Za-z0-9]{3}$/.test(id)) return id.toUpperCase();
  if (/^pdb_[0-9]{4}[0-9][A-Za-z0-9]{3}$/i.test(id)) return id.toLowerCase();
  return undefined;
}

function pdbUrl(template: string, id: string): string {
  return template.replaceAll('{id}', encodeURIComponent(id));
}

/** The file name an id is stored under: the last part of its mirror URL (`1CRN.cif.gz`). */
export function pdbFilename(template: string, id: string): string {
  const last = new URL(pdbUrl(template, id)).pathname.split('/').pop();
  return last ? decodeURIComponent(last) : `${id}.cif.gz`;
}

/** Bounds concurrent work in this process. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly size: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

const limiters = new Map<number, Semaphore>();
/** PDB_FETCH_CONCURRENCY fetches at once per worker process, whatever the job concurrency. */
function limiter(size: number): Semaphore {
  let semaphore = limiters.get(size);
  if (!semaphore) {
    semaphore = new Semaphore(size);
    limiters.set(size, semaphore);
  }
  return semaphore;
}

export interface PdbFetchOptions {
  mirrorUrl: string;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
  concurrency: number;
  maxBytes: number;
}

export type PdbFetchResult = ({ ok: true; filename: string; url: string } & StagedFile) | { ok: false; error: ImportItemError };

class Stalled extends Error {
  constructor(ms: number) {
    super(`no answer for ${Math.round(ms / 100) / 10} s`);
    this.name = 'Stalled';
  }
}

/** One attempt: `retry` says whether another attempt could help. */
type Attempt = ({ ok: true } & StagedFile) | { ok: false; retry: boolean; status?: number; reason: string; retryAfterMs?: number };

async function attempt(url: string, staging: Staging, itemId: string, options: PdbFetchOptions): Promise<Attempt> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // An idle timeout: it runs from the request until the headers, then restarts with every chunk, so
  // a server that sends headers and then nothing is abandoned like one that never answers.
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Stalled(options.timeoutMs)), options.timeoutMs);
  };
  arm();
  try {
    const response = await fetch(url, { signal: controller.signal, redirect: 'follow', headers: { accept: '*/*', 'user-agent': 'molvault' } });
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => {});
      const retryAfter = Number(response.headers.get('retry-after'));
      return {
        ok: false,
        retry: response.status >= 500 || response.status === 429 || response.status === 408,
        status: response.status,
        reason: `the mirror answered ${response.status} ${response.statusText}`.trim(),
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 60) * 1000 : undefined,
      };
    }
    arm();
    const staged = await stageStream(staging, itemId, Readable.fromWeb(response.body as never), {
      maxBytes: options.maxBytes,
      tooLarge: () => new StagingLimitError('file_too_large', `the file is larger than the ${formatBytes(options.maxBytes)} molvault accepts`),
      onBytes: arm,
      signal: controller.signal,
    });
    return { ok: true, ...staged };
  } catch (error) {
    if (error instanceof StagingLimitError) return { ok: false, retry: false, reason: error.message };
    const reason = controller.signal.aborted && controller.signal.reason instanceof Stalled ? controller.signal.reason.message : describeNetworkError(error);
    return { ok: false, retry: true, reason };
  } finally {
    clearTimeout(timer);
  }
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ? `${cause.code}${cause.message ? ` (${cause.message})` : ''}` : (error as Error).message;
}

/**
 * Fetches one PDB entry from the mirror into staging under the item's id: bounded concurrency,
 * an idle timeout per request, retries with exponential backoff for network errors, timeouts, 5xx
 * and 429 (never for 404). Failures come back as the item's reason, never thrown.
 */
export async function fetchPdbEntry(staging: Staging, id: string, itemId: string, options: PdbFetchOptions): Promise<PdbFetchResult> {
  const url = pdbUrl(options.mirrorUrl, id);
  return limiter(options.concurrency).run(async () => {
    let last: Extract<Attempt, { ok: false }> | undefined;
    for (let n = 1; n <= options.attempts; n++) {
      const result = await attempt(url, staging, itemId, options);
      if (result.ok)
        return { ok: true, filename: pdbFilename(options.mirrorUrl, id), url, bytes: result.bytes, sha256: result.sha256, compression: result.compression };
      last = result;
      if (result.status === 404 || result.status === 410) {
        return {
          ok: false,
          error: { code: 'pdb_not_found', message: `The PDB mirror has no entry ${id} (${url} answered ${result.status}).`, details: { url } },
        };
      }
      if (!result.retry || n === options.attempts) break;
      await sleep(Math.max(options.backoffMs * 2 ** (n - 1), result.retryAfterMs ?? 0));
    }
    const attempts = options.attempts === 1 ? 'one attempt' : `${options.attempts} attempts`;
    return {
      ok: false,
      error: {
        code: 'pdb_fetch_failed',
        message: `Fetching ${id} from the PDB mirror failed: ${last?.reason ?? 'unknown error'}${last?.retry ? ` (gave up after ${attempts})` : ''}.`,
        details: { url, ...(last?.status ? { status: last.status } : {}) },
      },
    };
  });
}
