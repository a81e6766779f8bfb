/**
 * `molvault import DIR|ARCHIVE --project NAME`: a client of the HTTP API (no database, no Redis).
 *
 * A directory is walked, every file checksummed (streaming), and the server asked which of those
 * checksums the project already stores; only the rest is sent, as one multipart request streamed
 * from disk per group of at most --files-per-import files (the first groups also under 4 MB, 8 MB,
 * 16 MB …: the server stores an import's files once its request has ended). Groups are checked and
 * sent in turn, so the first is on its way while later ones are still being checksummed. Running it again after a
 * crash or a Ctrl-C resumes the import instead of duplicating it. An archive is sent as it is (the server
 * unpacks it and skips what it already stores). Progress goes to stderr, the summary to stdout.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { forEachLimited } from '../lib/concurrency.js';
import { formatDuration, rateProgress } from './progress.js';

export const IMPORT_USAGE = `molvault import DIR|ARCHIVE --project NAME [options]

Imports a directory of structure files (walked recursively) or one archive (.zip, .tar, .tar.gz)
into a project on a molvault server. Files the project already stores (same sha256) are not sent
again, so re-running an interrupted import resumes it. Files the project refused before (same
sha256) are listed as "refused before" with their reason and not sent again, unless --retry-refused.

Options:
  --project NAME          the project to import into (required)
  --create-project        create the project if you have none of that name
  --server URL            the molvault server (default: $MOLVAULT_URL, else http://127.0.0.1:3000)
  --token T               an API token (default: $MOLVAULT_TOKEN); molvault token create prints one
  --tags a,b              tags for every imported structure
  --concurrency N         files checksummed at once, and import requests sent at once (default 4)
  --files-per-import N    a large directory is sent as several imports of at most N files (default 2000);
                          the first imports are also kept small (4 MB, then 8, 16, … MB), so storing starts early
  --retry-refused         send again the files the project refused before
  --json                  print the summary as JSON on stdout (progress stays on stderr)
  -h, --help              this text

Directories: files and folders whose names start with "." are left out; symbolic links are not
followed (the summary lists them as skipped).

Exit codes:
  0  every file is stored (or was stored already, or was refused before and not sent again)
  1  some files were rejected or failed this time; the summary lists each with its reason
  2  bad usage: a wrong option, a path that does not exist, no token, or no such project
  3  nothing could be imported: the server could not be reached, refused the token, or refused
     the import (quota, size); the message says why`;

/** Exit codes, as --help lists them. */
export const EXIT = { ok: 0, itemsFailed: 1, usage: 2, refused: 3 } as const;

export class ImportUsageError extends Error {}

/** How far an import got before it stopped for good (the server's retries spent): what the summary can still say. */
export interface ImportProgress {
  files: number;
  sent: number;
  bytesSent: number;
  imports: string[];
}

/** The import stopped midway; `reason` is why, `progress` how far it got. */
export class ImportStopped extends Error {
  constructor(
    readonly reason: unknown,
    readonly progress: ImportProgress,
  ) {
    super((reason as Error)?.message ?? String(reason));
  }
}
/** The server could not be reached or refused a request; `status` is the HTTP status if there was one. */
export class ImportRequestError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** A file of the import could not be read as measured (changed or removed while the import ran). */
export class LocalFileError extends Error {}

const DEFAULT_SERVER = 'http://127.0.0.1:3000';
export const DEFAULT_FILES_PER_IMPORT = 2000;
/** An import request also stays under this many bytes, so one request never carries a whole disk. */
const MAX_BYTES_PER_IMPORT = 2 * 1024 ** 3;
/** The known-files endpoint answers for at most this many checksums per call. */
const KNOWN_QUERY_SIZE = 5000;
const ITEMS_PAGE = 500;

export interface ImportOptions {
  source: string;
  project: string;
  server: string;
  token: string;
  createProject?: boolean;
  tags?: string[];
  concurrency?: number;
  filesPerImport?: number;
  /** Send again what the project refused before (by default those files are reported, not sent). */
  retryRefused?: boolean;
  /** How long and how often a sick server is retried (default DEFAULT_RETRY). */
  retry?: RetryPolicy;
  /** Where the progress goes (stderr). */
  progress?: NodeJS.WriteStream;
  /** Poll interval for the server-side progress. */
  pollIntervalMs?: number;
}

export interface ImportFailure {
  name: string;
  state: 'rejected' | 'failed';
  code?: string;
  message: string;
}

export interface ImportSummary {
  source: string;
  mode: 'directory' | 'archive' | 'file';
  project: { id: string; name: string; created: boolean };
  imports: string[];
  /** Entries found, links and special files included (directory), or items the server counted (archive): stored + rejected + failed + skipped. */
  files: number;
  sent: number;
  bytesSent: number;
  stored: number;
  rejected: number;
  failed: number;
  /** Everything not stored this time on purpose: already stored (client- or server-side), duplicates, links. */
  skipped: number;
  alreadyStored: number;
  elapsedSeconds: number;
  /** Reading and checksumming the files (directories only); it overlaps sending, after the first group. */
  checksumSeconds: number;
  /** From the first byte sent until the server accepted the last import (202). */
  uploadSeconds: number;
  /** From the first byte sent until the last item ended. */
  processingSeconds: number;
  filesPerSecond: number;
  megabytesPerSecond: number;
  failures: ImportFailure[];
  skippedFiles: { name: string; reason: string }[];
  /** Files not sent because the project refused the same content before: the reason then. */
  refusedBefore: { name: string; code?: string; message: string }[];
}

export interface LocalFile {
  /** As sent: relative to the directory, with forward slashes. */
  name: string;
  path: string;
  size: number;
  sha256?: string;
}

interface ImportItem {
  name: string;
  state: string;
  structureId?: string;
  error?: { code?: string; message?: string };
}

interface ImportStatus {
  id: string;
  state: string;
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  items: ImportItem[];
  nextCursor?: string | null;
  error?: { code?: string; message?: string } | null;
}

/**
 * How long a request that meets a sick server (5xx, 503, no connection) is retried, and the
 * backoff's bounds. Until the server has answered once, the patience is `firstContactMs`: a wrong
 * --server or a server not started fails within seconds, while a server that goes away in the
 * middle of an import (a restart) is waited for.
 */
export interface RetryPolicy {
  forMs: number;
  firstDelayMs: number;
  maxDelayMs: number;
  firstContactMs?: number;
}
export const DEFAULT_RETRY: RetryPolicy = { forMs: 10 * 60_000, firstDelayMs: 500, maxDelayMs: 15_000, firstContactMs: 20_000 };

/** Told before each pause of a retry: the trouble met, how long the pause is, and until when retries go on. */
export type RetryNotice = (error: ImportRequestError, delayMs: number, deadline: number) => void;

/** Whether an error is the server's or the network's passing trouble (worth a retry), not a refusal of what was sent. */
export const isTransient = (error: unknown) =>
  error instanceof ImportRequestError && (error.status === undefined || error.status >= 500) && error.code !== 'storage_full';

/**
 * A small JSON client for the molvault API with the token; errors become ImportRequestError with the
 * server's sentence. Requests that can be sent again (no streamed body) are retried with capped,
 * doubling backoff while the server answers 5xx or cannot be reached, up to `retry.forMs`.
 */
export function apiClient(server: string, token: string, retry: RetryPolicy = DEFAULT_RETRY, onRetry?: RetryNotice) {
  const base = server.replace(/\/+$/, '');
  let answered = false;
  async function request<T>(method: string, urlPath: string, init: { json?: unknown; body?: RequestInit['body']; headers?: Record<string, string> } = {}) {
    if (init.body instanceof ReadableStream) return requestOnce<T>(method, urlPath, init);
    const patience = answered ? retry : { ...retry, forMs: Math.min(retry.forMs, retry.firstContactMs ?? retry.forMs) };
    return withRetry(patience, () => requestOnce<T>(method, urlPath, init), onRetry);
  }
  async function requestOnce<T>(method: string, urlPath: string, init: { json?: unknown; body?: RequestInit['body']; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json', ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let response: Response;
    try {
      response = await fetch(`${base}${urlPath}`, { method, headers, body, ...(body instanceof ReadableStream ? { duplex: 'half' } : {}) } as RequestInit);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      // The request body failed on our side (a file changed while it was sent): that, not the network, is the story.
      if (cause instanceof LocalFileError) throw cause;
      throw new ImportRequestError(
        `cannot reach molvault at ${base}: ${cause?.code ?? cause?.message ?? (error as Error).message}${answered ? '' : ' (is --server right, and the server running?)'}`,
      );
    }
    answered = true;
    const text = await response.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const apiError = parsed?.error as { code?: string; message?: string } | undefined;
      const what = apiError?.message ?? (text.trim().slice(0, 200) || response.statusText);
      const hint = response.status === 401 ? ' (is the token right and not expired or revoked?)' : '';
      throw new ImportRequestError(`${method} ${urlPath} answered ${response.status}: ${what}${hint}`, response.status, apiError?.code);
    }
    return { status: response.status, headers: response.headers, body: parsed as T };
  }
  return { base, request, retry, onRetry };
}

/** Runs `attempt` again while it fails transiently, waiting 0.5 s, 1 s, 2 s … (at most maxDelayMs) for up to forMs in all. */
export async function withRetry<T>(policy: RetryPolicy, attempt: () => Promise<T>, onRetry?: RetryNotice): Promise<T> {
  const deadline = Date.now() + policy.forMs;
  let delay = policy.firstDelayMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransient(error) || Date.now() + delay > deadline) throw error;
      onRetry?.(error as ImportRequestError, delay, deadline);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(policy.maxDelayMs, delay * 2);
    }
  }
}
type ApiClient = ReturnType<typeof apiClient>;

interface ProjectRow {
  id: string;
  name: string;
}

/** The user's project of that name (exact), creating it when asked; otherwise a usage error naming the projects there are. */
export async function resolveProject(api: ApiClient, name: string, create: boolean): Promise<{ id: string; name: string; created: boolean }> {
  const all: ProjectRow[] = [];
  let cursor: string | null | undefined;
  do {
    const query = `/v1/projects?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { body } = await api.request<{ items: ProjectRow[]; nextCursor: string | null }>('GET', query);
    all.push(...body.items);
    cursor = body.nextCursor;
  } while (cursor);
  const found = all.find((p) => p.name === name);
  if (found) return { id: found.id, name: found.name, created: false };
  if (create) {
    const { body } = await api.request<ProjectRow>('POST', '/v1/projects', { json: { name } });
    return { id: body.id, name: body.name, created: true };
  }
  const names = all.map((p) => `"${p.name}"`);
  const listed =
    names.length === 0
      ? 'you have no projects yet'
      : `your projects: ${names.slice(0, 20).join(', ')}${names.length > 20 ? `, and ${names.length - 20} more` : ''}`;
  const similar = all.find((p) => p.name.toLowerCase() === name.toLowerCase());
  throw new ImportUsageError(
    `no project named "${name}" on ${api.base}; ${listed}.${similar ? ` Did you mean "${similar.name}"?` : ''} Add --create-project to create it.`,
  );
}

/** Walks a directory: regular files, sorted; dot-names left out; links and special files reported, not followed. */
export async function walkDirectory(root: string): Promise<{ files: LocalFile[]; skipped: { name: string; reason: string }[] }> {
  const files: LocalFile[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const visit = async (dir: string, prefix: string) => {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      const name = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) skipped.push({ name, reason: 'symbolic link, not followed' });
      else if (entry.isDirectory()) await visit(full, name);
      else if (entry.isFile()) files.push({ name, path: full, size: 0 });
      else skipped.push({ name, reason: 'not a regular file (device, socket or pipe)' });
    }
  };
  await visit(root, '');
  await forEachLimited(files, 16, async (file) => {
    file.size = (await fs.lstat(file.path)).size;
  });
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  skipped.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { files, skipped };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export type ArchiveKind = 'zip' | 'tar' | 'tar.gz';

/** Whether the file is an archive, by its first bytes (a gzip is looked into for a tar header), then by its name. */
export async function detectArchive(file: string): Promise<ArchiveKind | undefined> {
  const handle = await fs.open(file, 'r');
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const isTar = (bytes: Buffer) => bytes.length >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05)) return 'zip';
  if (isTar(head)) return 'tar';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    try {
      // A prefix of the stream: decompress what there is without demanding the end.
      if (isTar(gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH }))) return 'tar.gz';
    } catch {
      // Not gzip after all, or damaged: the name decides below.
    }
  }
  const lower = file.toLowerCase();
  if (lower.endsWith('.tar.gz') || lower.endsWith('.tgz')) return 'tar.gz';
  if (lower.endsWith('.tar')) return 'tar';
  if (lower.endsWith('.zip')) return 'zip';
  return undefined;
}

/** Quoted for a Content-Disposition parameter the way browsers do (WHATWG multipart/form-data). */
function dispositionValue(value: string): string {
  return value.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}

interface MultipartPart {
  field: string;
  value?: string;
  file?: LocalFile;
}

/**
 * A multipart/form-data body read from disk as it is sent: never more than one chunk of one file
 * in memory. The length is known up front (the sizes were measured), so the server can refuse an
 * import over quota before reading it. A file that shrank since it was measured stops the request.
 */
function multipartBody(parts: MultipartPart[], onFileBytes: (bytes: number, fileDone: boolean) => void) {
  const boundary = `----molvault-${randomBytes(12).toString('hex')}`;
  const heads = parts.map((part) => {
    const disposition = `Content-Disposition: form-data; name="${part.field}"`;
    const head = part.file
      ? `--${boundary}\r\n${disposition}; filename="${dispositionValue(part.file.name)}"\r\nContent-Type: application/octet-stream\r\n\r\n`
      : `--${boundary}\r\n${disposition}\r\n\r\n${part.value ?? ''}`;
    return Buffer.from(head, 'utf8');
  });
  const tail = Buffer.from(`--${boundary}--\r\n`);
  const length = heads.reduce((sum, head, i) => sum + head.length + (parts[i].file?.size ?? 0) + 2, 0) + tail.length;

  async function* generate() {
    for (const [i, part] of parts.entries()) {
      yield heads[i];
      const file = part.file;
      if (file && file.size > 0) {
        let sent = 0;
        try {
          for await (const chunk of createReadStream(file.path, { start: 0, end: file.size - 1, highWaterMark: 256 * 1024 })) {
            sent += (chunk as Buffer).length;
            onFileBytes((chunk as Buffer).length, false);
            yield chunk as Buffer;
          }
        } catch (error) {
          throw new LocalFileError(
            `${file.name} could not be read while it was being sent (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); run the import again`,
          );
        }
        if (sent !== file.size) throw new LocalFileError(`${file.name} changed while it was being sent (${sent} of ${file.size} bytes); run the import again`);
      }
      if (file) onFileBytes(0, true);
      yield Buffer.from('\r\n');
    }
    yield tail;
  }
  const iterator = generate();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await iterator.return(undefined);
    },
  });
  return { stream, length, contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Groups files into imports of at most `maxFiles` files and MAX_BYTES_PER_IMPORT bytes. With
 * `firstBytes`, the first group also stays under that many bytes and each next one under twice the
 * last one's cap: the server stores an import's files only once its request has ended, so a first
 * small import gets it working while the larger ones are still on their way.
 */
export function groupFiles(files: readonly LocalFile[], maxFiles: number, firstBytes = MAX_BYTES_PER_IMPORT): LocalFile[][] {
  const groups: LocalFile[][] = [];
  let current: LocalFile[] = [];
  let bytes = 0;
  let maxBytes = Math.min(firstBytes, MAX_BYTES_PER_IMPORT);
  for (const file of files) {
    if (current.length > 0 && (current.length >= maxFiles || bytes + file.size > maxBytes)) {
      groups.push(current);
      current = [];
      bytes = 0;
      maxBytes = Math.min(maxBytes * 2, MAX_BYTES_PER_IMPORT);
    }
    current.push(file);
    bytes += file.size;
  }
  if (current.length) groups.push(current);
  return groups;
}

/** The first import goes out once this many files are checksummed, so the server has work while the rest are. */
const FIRST_GROUP_FILES = 200;
/** The first imports' byte caps start here and double (groupFiles). */
const FIRST_GROUP_BYTES = 4 * 1024 ** 2;

interface CheckOptions {
  concurrency: number;
  filesPerImport: number;
  note: (text: string) => void;
  /** Time spent checksumming one group. */
  onHashed: (seconds: number) => void;
  /** A file not sent: unreadable, skipped (with the reason), or else stored already. */
  onPassedOver: (file: LocalFile, passed: { unreadable?: ImportFailure; skipped?: string; refusedBefore?: { code?: string; message: string } }) => void;
  /** Send again what the project refused before. */
  retryRefused: boolean;
}

/**
 * The files to send, in groups of at most `filesPerImport` files (and MAX_BYTES_PER_IMPORT bytes),
 * each yielded as soon as its files are checksummed and the server has said which of them the
 * project stores, so sending one group overlaps checksumming the next. Only the first file of each
 * content is sent. The first group is small: sending starts within a fraction of a second.
 */
async function* checkedGroups(api: ApiClient, projectId: string, files: LocalFile[], options: CheckOptions): AsyncGenerator<LocalFile[]> {
  const first = Math.min(options.filesPerImport, FIRST_GROUP_FILES);
  const early = groupFiles(files.slice(0, first), first, FIRST_GROUP_BYTES);
  // The rest continue the doubling caps where the first files left them.
  const cap = Math.min(FIRST_GROUP_BYTES * 2 ** early.length, MAX_BYTES_PER_IMPORT);
  const batches = [...early, ...groupFiles(files.slice(first), options.filesPerImport, cap)];
  const firstOfContent = new Map<string, string>();
  let asksKnown = true;
  for (const batch of batches) {
    const started = Date.now();
    await forEachLimited(batch, options.concurrency, async (file) => {
      try {
        file.sha256 = await sha256File(file.path);
      } catch (error) {
        options.onPassedOver(file, {
          unreadable: {
            name: file.name,
            state: 'failed',
            code: 'unreadable',
            message: `could not be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
          },
        });
      }
    });
    options.onHashed((Date.now() - started) / 1000);
    const readable = batch.filter((f) => f.sha256 !== undefined);
    const { known, refused } = asksKnown
      ? await knownChecksums(
          api,
          projectId,
          readable.map((f) => f.sha256 as string),
          () => {
            // Said once: an older server cannot tell, and every file is sent (the server still skips what it stores).
            asksKnown = false;
            options.note('this server cannot tell which files it stores already; sending every file');
          },
        )
      : { known: new Set<string>(), refused: new Map<string, RefusedBefore>() };
    const toSend: LocalFile[] = [];
    for (const file of readable) {
      const sha = file.sha256 as string;
      const earlier = firstOfContent.get(sha);
      const refusal = options.retryRefused ? undefined : refused.get(sha);
      if (known.has(sha)) options.onPassedOver(file, {});
      else if (refusal) options.onPassedOver(file, { refusedBefore: refusal });
      // Same bytes twice in one set: the project would hold one structure for them either way.
      else if (earlier) options.onPassedOver(file, { skipped: `same content as ${earlier}` });
      else {
        firstOfContent.set(sha, file.name);
        toSend.push(file);
      }
    }
    if (toSend.length > 0) yield toSend;
  }
}

const formatPause = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);

/** At most `size` at once: take() waits for a free slot, give() hands it back. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** An import has ended when it completed or failed as a whole (receiving, expanding and running are on the way). */
const importEnded = (status: ImportStatus) => status.state === 'completed' || status.state === 'failed';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function classifyItem(item: ImportItem): 'stored' | 'rejected' | 'failed' | 'skipped' | 'pending' {
  switch (item.state) {
    case 'stored':
    case 'succeeded':
    case 'completed':
      return 'stored';
    case 'rejected':
      return 'rejected';
    case 'failed':
      return 'failed';
    case 'skipped':
      return 'skipped';
    default:
      return 'pending';
  }
}

/** Runs one import end to end and returns its summary. Throws ImportUsageError / ImportRequestError when nothing could be done. */
export async function runImport(options: ImportOptions): Promise<ImportSummary> {
  const started = Date.now();
  const out = options.progress ?? process.stderr;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const filesPerImport = Math.max(1, options.filesPerImport ?? DEFAULT_FILES_PER_IMPORT);
  const pollIntervalMs = options.pollIntervalMs ?? (out.isTTY ? 500 : 1000);
  const tags = options.tags ?? [];
  // On a terminal a note first clears the progress bar's line (the bar is drawn again on its next update).
  const note = (text: string) => out.write(out.isTTY ? `\r\x1b[K${text}\n` : `${text}\n`);

  const source = path.resolve(options.source);
  const stat = await fs.stat(source).catch(() => undefined);
  if (!stat) throw new ImportUsageError(`${options.source} does not exist`);
  if (!stat.isDirectory() && !stat.isFile()) throw new ImportUsageError(`${options.source} is neither a directory nor a file`);

  // Every retry is said (once a second at most), so a wait on a sick or unreachable server is never silent.
  let lastRetryNote = 0;
  const retryNote: RetryNotice = (error, delayMs, deadline) => {
    if (Date.now() - lastRetryNote < 1000) return;
    lastRetryNote = Date.now();
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    note(`${error.message}; trying again in ${formatPause(delayMs)} (for ${left >= 60 ? `${Math.round(left / 60)} min` : `${left} s`} more)`);
  };
  const api = apiClient(options.server, options.token, options.retry, retryNote);
  const project = await resolveProject(api, options.project, options.createProject ?? false);
  if (project.created) note(`created project "${project.name}"`);

  const archive = stat.isFile() ? await detectArchive(source) : undefined;
  const mode: ImportSummary['mode'] = stat.isDirectory() ? 'directory' : archive ? 'archive' : 'file';
  const skippedFiles: { name: string; reason: string }[] = [];
  const refusedBefore: ImportSummary['refusedBefore'] = [];
  let fileCount = 0;
  let alreadyStored = 0;
  /** Files found but not readable: failed, with the reason. */
  const unreadable: ImportFailure[] = [];
  let checksumSeconds = 0;
  const imports: { id: string; files: LocalFile[]; status?: ImportStatus }[] = [];
  const failures: ImportFailure[] = [];
  let firstByteAt: number | undefined;
  let lastAcceptedAt: number | undefined;
  let bytesSent = 0;
  let filesSent = 0;
  let refusal: ImportRequestError | undefined;
  let notSent = 0;

  let files: LocalFile[];
  if (archive || !stat.isDirectory()) {
    files = [{ name: path.basename(source), path: source, size: stat.size }];
  } else {
    const walked = await walkDirectory(source);
    files = walked.files;
    skippedFiles.push(...walked.skipped);
  }
  // Everything found counts, links too, so stored + rejected + failed + skipped adds up to it.
  fileCount = files.length + skippedFiles.length;

  // One bar for checksumming, checking and sending, which overlap: a file counts as done once it is
  // sent or passed over (stored already, the same content as another, unreadable).
  const sending = rateProgress('sending   ', { total: files.length, totalBytes: files.reduce((sum, f) => sum + f.size, 0), stream: out });
  let passedFiles = 0;
  let passedBytes = 0;
  const showSending = () => sending.update(filesSent + passedFiles, bytesSent + passedBytes);
  /** Groups ready to send, each as soon as it is checksummed and checked. */
  const groups: AsyncIterable<LocalFile[]> = archive
    ? // Sent as it is: the server reads it entry by entry and skips what the project stores.
      (async function* () {
        yield files;
      })()
    : checkedGroups(api, project.id, files, {
        concurrency,
        filesPerImport,
        note,
        onHashed: (seconds) => {
          checksumSeconds += seconds;
        },
        retryRefused: options.retryRefused ?? false,
        onPassedOver: (file, passed) => {
          if (passed.unreadable) unreadable.push(passed.unreadable);
          else if (passed.refusedBefore) refusedBefore.push({ name: file.name, ...passed.refusedBefore });
          else if (passed.skipped) skippedFiles.push({ name: file.name, reason: passed.skipped });
          else alreadyStored++;
          passedFiles++;
          passedBytes += file.size;
          showSending();
        },
      });

  const sendSlots = new Slots(Math.min(concurrency, 4));
  const sends: Promise<void>[] = [];
  // The first refusal (quota, size) stops the rest.
  const markNotSent = (group: LocalFile[], error: ImportRequestError) => {
    notSent += group.length;
    for (const file of group) failures.push({ name: file.name, state: 'failed', code: error.code ?? 'not_sent', message: `not imported: ${error.message}` });
  };
  const groupTries = new Map<LocalFile[], number>();
  const groupStarted = new Map<LocalFile[], number>();
  const sendGroup = async (group: LocalFile[]): Promise<void> => {
    if (refusal) return markNotSent(group, refusal);
    firstByteAt ??= Date.now();
    const parts: MultipartPart[] = [...tags.map((tag) => ({ field: 'tags', value: tag })), ...group.map((file) => ({ field: 'file', file }))];
    let attemptBytes = 0;
    let attemptFiles = 0;
    const body = multipartBody(parts, (bytes, fileDone) => {
      attemptBytes += bytes;
      bytesSent += bytes;
      if (fileDone) {
        attemptFiles++;
        filesSent++;
      }
      showSending();
    });
    try {
      const response = await api.request<{ import?: { id: string; state: string; jobId?: string } }>('POST', `/v1/projects/${project.id}/imports`, {
        body: body.stream,
        headers: { 'content-type': body.contentType, 'content-length': String(body.length) },
      });
      const id = response.body?.import?.id;
      if (!id) throw new ImportRequestError(`the server accepted the import but named no import id (HTTP ${response.status})`);
      imports.push({ id, files: group });
      lastAcceptedAt = Date.now();
    } catch (error) {
      // Refused bytes were not sent, whatever the counter saw stream out.
      bytesSent -= attemptBytes;
      filesSent -= attemptFiles;
      if (error instanceof LocalFileError) return markNotSent(group, new ImportRequestError(error.message, undefined, 'file_changed'));
      if (!(error instanceof ImportRequestError)) throw error;
      // A sick server (5xx, 503 during an outage, no connection): the same files again, after a pause.
      if (isTransient(error) && Date.now() - (groupStarted.get(group) ?? Date.now()) < api.retry.forMs) {
        const tries = (groupTries.get(group) ?? 0) + 1;
        groupTries.set(group, tries);
        groupStarted.set(group, groupStarted.get(group) ?? Date.now());
        const pause = Math.min(api.retry.maxDelayMs, api.retry.firstDelayMs * 2 ** (tries - 1));
        api.onRetry?.(error, pause, (groupStarted.get(group) ?? Date.now()) + api.retry.forMs);
        await new Promise((resolve) => setTimeout(resolve, pause));
        await sendGroup(group);
        return;
      }
      // A server with smaller limits than ours: the same files in two halves, then smaller still.
      if (error.status === 413 && (error.code === 'import_too_large' || error.code === 'too_many_items') && group.length > 1) {
        const half = Math.ceil(group.length / 2);
        await sendGroup(group.slice(0, half));
        await sendGroup(group.slice(half));
        return;
      }
      refusal ??= error;
      markNotSent(group, error);
    }
  };
  let checkFailed: { error: unknown } | undefined;
  try {
    // A group goes out as soon as it is ready, while the next one is checksummed.
    for await (const group of groups) {
      await sendSlots.take();
      sends.push(sendGroup(group).finally(() => sendSlots.give()));
    }
  } catch (error) {
    checkFailed = { error };
  }
  // Whatever failed is reported once every request in flight has settled.
  const crashed = (await Promise.allSettled(sends)).find((result) => result.status === 'rejected');
  const stoppedBy = (reason: unknown) =>
    reason instanceof ImportUsageError
      ? reason
      : new ImportStopped(reason, { files: files.length, sent: filesSent, bytesSent, imports: imports.map((i) => i.id) });
  if (checkFailed) throw stoppedBy(checkFailed.error);
  if (crashed) throw stoppedBy(crashed.reason);
  if (files.length > 0) sending.finish();
  if (alreadyStored > 0) note(`${alreadyStored} already stored, skipped`);
  if (refusedBefore.length > 0) note(`${refusedBefore.length} refused before, not sent again (--retry-refused sends them)`);
  failures.push(...unreadable);
  const uploadSeconds = firstByteAt && lastAcceptedAt ? (lastAcceptedAt - firstByteAt) / 1000 : 0;

  if (imports.length === 0 && refusal) throw stoppedBy(refusal);

  // Processing: counts from Postgres through GET /v1/imports/:id until every import has ended.
  if (imports.length > 0) {
    const expected = () => imports.reduce((sum, i) => sum + (i.status?.total ?? i.files.length), 0);
    const processing = rateProgress('processing', { total: archive ? 0 : expected(), stream: out });
    for (;;) {
      await Promise.all(
        imports
          .filter((i) => !i.status || !importEnded(i.status))
          .map(async (i) => {
            i.status = (await api.request<ImportStatus>('GET', `/v1/imports/${i.id}?limit=1`)).body;
          }),
      ).catch((error: unknown) => {
        throw stoppedBy(error);
      });
      const done = imports.reduce((sum, i) => sum + (i.status ? i.status.succeeded + i.status.failed + i.status.skipped : 0), 0);
      processing.setTotal(expected());
      processing.update(done);
      if (imports.every((i) => i.status && importEnded(i.status))) break;
      await sleep(pollIntervalMs);
    }
    processing.finish();
  }
  const endedAt = Date.now();

  // The record of every item, for the counts and the reasons.
  let stored = 0;
  let rejected = 0;
  let failed = 0;
  let itemCount = 0;
  for (const entry of imports) {
    const itemsBefore = itemCount;
    let cursor: string | null | undefined;
    do {
      const query = `/v1/imports/${entry.id}?limit=${ITEMS_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { body } = await api.request<ImportStatus>('GET', query);
      for (const item of body.items) {
        itemCount++;
        const kind = classifyItem(item);
        if (kind === 'stored') stored++;
        else if (kind === 'skipped') {
          if (item.error?.code === 'already_stored') alreadyStored++;
          else skippedFiles.push({ name: item.name, reason: item.error?.message ?? 'skipped by the server' });
        } else {
          const state = kind === 'rejected' ? 'rejected' : 'failed';
          if (state === 'rejected') rejected++;
          else failed++;
          const message =
            kind === 'pending' ? `did not finish (still "${item.state}" when the import ended as "${entry.status?.state}")` : (item.error?.message ?? state);
          failures.push({ name: item.name, state, code: item.error?.code, message });
        }
      }
      cursor = body.nextCursor;
    } while (cursor);
    // An import that failed as a whole (a refused archive, the quota) may list no items, or fewer than it was sent.
    if (entry.status?.state === 'failed') {
      const reason = entry.status.error?.message ?? 'the import failed as a whole';
      const listed = itemCount - itemsBefore;
      if (archive && listed === 0) {
        failed++;
        failures.push({ name: entry.files[0].name, state: 'failed', code: entry.status.error?.code, message: reason });
      } else if (!archive && listed < entry.files.length) {
        failed += entry.files.length - listed;
        failures.push({
          name: `${entry.files.length - listed} file(s) of import ${entry.id}`,
          state: 'failed',
          code: entry.status.error?.code,
          message: reason,
        });
      }
    }
  }
  failed += notSent + unreadable.length;
  if (archive) fileCount = itemCount;

  const processingSeconds = firstByteAt ? (endedAt - firstByteAt) / 1000 : 0;
  const processed = stored + rejected + failed;
  failures.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    source: options.source,
    mode,
    project,
    imports: imports.map((i) => i.id),
    files: fileCount,
    sent: filesSent,
    bytesSent,
    stored,
    rejected,
    failed,
    skipped: alreadyStored + skippedFiles.length + refusedBefore.length,
    alreadyStored,
    elapsedSeconds: round((Date.now() - started) / 1000, 2),
    checksumSeconds: round(checksumSeconds, 2),
    uploadSeconds: round(uploadSeconds, 2),
    processingSeconds: round(processingSeconds, 2),
    filesPerSecond: processingSeconds > 0 ? round(processed / processingSeconds, 2) : 0,
    megabytesPerSecond: processingSeconds > 0 ? round(bytesSent / 1e6 / processingSeconds, 3) : 0,
    failures,
    skippedFiles,
    refusedBefore: refusedBefore.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

interface RefusedBefore {
  code?: string;
  message: string;
}

/**
 * Which checksums the project stores, and which it refused before (with the reason), asked in
 * groups of KNOWN_QUERY_SIZE. A server without the endpoint knows none (and `cannotTell` is called).
 */
async function knownChecksums(
  api: ApiClient,
  projectId: string,
  checksums: string[],
  cannotTell: () => void,
): Promise<{ known: Set<string>; refused: Map<string, RefusedBefore> }> {
  const known = new Set<string>();
  const refused = new Map<string, RefusedBefore>();
  const unique = [...new Set(checksums)];
  for (let i = 0; i < unique.length; i += KNOWN_QUERY_SIZE) {
    try {
      const { body } = await api.request<{ known: string[]; refused?: { sha256: string; code: string | null; message: string | null }[] }>(
        'POST',
        `/v1/projects/${projectId}/imports/known`,
        { json: { sha256: unique.slice(i, i + KNOWN_QUERY_SIZE) } },
      );
      for (const sha of body.known) known.add(sha);
      for (const r of body.refused ?? []) refused.set(r.sha256, { code: r.code ?? undefined, message: r.message ?? 'refused' });
    } catch (error) {
      // An older server: no resume, but the import itself still works (the server skips what it stores).
      if (error instanceof ImportRequestError && (error.status === 404 || error.status === 405) && error.code !== 'not_found') {
        cannotTell();
        return { known, refused };
      }
      throw error;
    }
  }
  return { known, refused };
}

/** The summary for people: counts, rate, and every file that was not stored with its reason. */
export function formatSummary(summary: ImportSummary): string {
  const lines: string[] = [];
  const what = summary.mode === 'archive' ? `archive ${summary.source}` : summary.source;
  lines.push(
    `Imported ${what} into project "${summary.project.name}"${summary.imports.length > 1 ? ` (${summary.imports.length} imports)` : ''}: ${summary.files} file${summary.files === 1 ? '' : 's'}`,
  );
  const row = (label: string, count: number, extra = '') => lines.push(`  ${label.padEnd(9)} ${String(count).padStart(6)}${extra}`);
  row('stored', summary.stored);
  row('rejected', summary.rejected);
  row('failed', summary.failed);
  const skippedParts = [
    summary.alreadyStored > 0 ? `${summary.alreadyStored} already stored, skipped` : '',
    summary.refusedBefore.length > 0 ? `${summary.refusedBefore.length} refused before, not sent again` : '',
    summary.skippedFiles.length > 0 ? `${summary.skippedFiles.length} other${summary.skippedFiles.length === 1 ? '' : 's'} listed below` : '',
  ].filter(Boolean);
  row('skipped', summary.skipped, skippedParts.length ? `   (${skippedParts.join('; ')})` : '');
  const sentMB = (summary.bytesSent / 1e6).toFixed(1);
  lines.push(
    `  elapsed ${summary.elapsedSeconds < 60 ? `${summary.elapsedSeconds.toFixed(1)} s` : formatDuration(summary.elapsedSeconds)}; sent ${summary.sent} files, ${sentMB} MB` +
      (summary.processingSeconds > 0 ? `; ${summary.filesPerSecond.toFixed(1)} files/s, ${summary.megabytesPerSecond.toFixed(2)} MB/s` : ''),
  );
  if (summary.failures.length) {
    lines.push('', 'Not stored:');
    for (const f of summary.failures) lines.push(`  ${f.name}: ${f.state === 'rejected' ? 'rejected: ' : ''}${f.message}`);
  }
  if (summary.refusedBefore.length) {
    lines.push('', 'Refused before (not sent again; --retry-refused sends them):');
    for (const r of summary.refusedBefore) lines.push(`  ${r.name}: ${r.message}`);
  }
  if (summary.skippedFiles.length) {
    lines.push('', 'Skipped:');
    for (const s of summary.skippedFiles) lines.push(`  ${s.name}: ${s.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

export function exitCodeFor(summary: ImportSummary): number {
  return summary.rejected + summary.failed > 0 ? EXIT.itemsFailed : EXIT.ok;
}

/** `molvault import ...`: parses the arguments, runs, prints; returns the exit code. */
export async function importCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const fail = (code: number, message: string, usage = false) => {
    process.stderr.write(`molvault import: ${message}\n${usage ? `\n${IMPORT_USAGE}\n` : ''}`);
    return code;
  };
  let parsed: ReturnType<typeof parseImportArgs>;
  try {
    parsed = parseImportArgs(args, env);
  } catch (error) {
    return fail(EXIT.usage, (error as Error).message, true);
  }
  if (parsed === 'help') {
    process.stdout.write(`${IMPORT_USAGE}\n`);
    return EXIT.ok;
  }
  try {
    const summary = await runImport(parsed.options);
    process.stdout.write(parsed.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    return exitCodeFor(summary);
  } catch (error) {
    if (error instanceof ImportUsageError) return fail(EXIT.usage, error.message);
    if (error instanceof ImportStopped) {
      // The summary it can still give: how far it got, and that a re-run resumes.
      const { progress } = error;
      const stopped = {
        stopped: true,
        reason: error.message,
        ...progress,
        resume: 'run the same command again: files the project stores already are not sent again',
      };
      if (parsed.json) process.stdout.write(`${JSON.stringify(stopped, null, 2)}\n`);
      else {
        process.stdout.write(
          `Stopped: ${progress.sent} of ${progress.files} file${progress.files === 1 ? '' : 's'} sent (${(progress.bytesSent / 1e6).toFixed(1)} MB) in ${progress.imports.length} import${progress.imports.length === 1 ? '' : 's'}` +
            `${progress.imports.length ? ` (${progress.imports.join(', ')})` : ''}; what the server accepted goes on there.\nRun the same command again to resume: files the project stores already are not sent again.\n`,
        );
      }
      return fail(EXIT.refused, error.reason instanceof ImportRequestError ? error.message : `the import stopped: ${error.message}`);
    }
    if (error instanceof ImportRequestError) return fail(EXIT.refused, error.message);
    // Anything else stopped the import midway; what the server accepted so far goes on there.
    return fail(EXIT.refused, `the import stopped: ${(error as Error).message}`);
  }
}

function parseImportArgs(args: string[], env: NodeJS.ProcessEnv): 'help' | { options: ImportOptions; json: boolean } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      project: { type: 'string' },
      server: { type: 'string' },
      token: { type: 'string' },
      'create-project': { type: 'boolean', default: false },
      tags: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'files-per-import': { type: 'string' },
      'retry-refused': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (positionals.length !== 1)
    throw new ImportUsageError(positionals.length === 0 ? 'name a directory or an archive to import' : 'name one directory or archive');
  if (!values.project?.trim()) throw new ImportUsageError('--project NAME is required');
  const token = values.token ?? env.MOLVAULT_TOKEN;
  if (!token) throw new ImportUsageError('no API token: pass --token or set MOLVAULT_TOKEN (molvault token create --email you@lab.org prints one)');
  const server = values.server ?? env.MOLVAULT_URL ?? DEFAULT_SERVER;
  if (!/^https?:\/\/[^/]+/.test(server)) throw new ImportUsageError(`--server must be an http(s) URL such as ${DEFAULT_SERVER}, not "${server}"`);
  const whole = (name: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new ImportUsageError(`--${name} must be a whole number ≥ 1, not "${text}"`);
    return n;
  };
  const tags = (values.tags ?? [])
    .flatMap((t) => t.split(','))
    .map((t) => t.trim())
    .filter(Boolean);
  return {
    json: values.json ?? false,
    options: {
      source: positionals[0],
      project: values.project.trim(),
      server,
      token,
      createProject: values['create-project'],
      tags,
      concurrency: whole('concurrency', values.concurrency, 4),
      filesPerImport: whole('files-per-import', values['files-per-import'], DEFAULT_FILES_PER_IMPORT),
      retryRefused: values['retry-refused'] ?? false,
    },
  };
}
