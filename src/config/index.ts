import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { QUEUE_NAMES, type QueueName } from '../queue/names.js';

/** Sizes may be given as bytes or with a unit: 10GB, 512MiB, 100kb. */
const byteSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const parsed = parseByteSize(String(value));
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (try 1073741824, 1GB or 512MiB)` });
    return z.NEVER;
  }
  return parsed;
});

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] || 'b').toLowerCase();
  const factor = UNITS[unit];
  if (factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}

export { QUEUE_NAMES, type QueueName };

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "7d", "12h", "90m", "30s" or a number of milliseconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/i.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (DURATION_UNITS[(match[2] ?? 'ms').toLowerCase()] ?? 1));
}

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const parsed = parseDuration(String(value));
  if (parsed === undefined || parsed <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (try 7d, 12h, 90m or a number of milliseconds)` });
    return z.NEVER;
  }
  return parsed;
});

/** "ingest=4,validate=2" → { ingest: 4, validate: 2 } */
const concurrencyMap = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const result: Partial<Record<QueueName, number>> = {};
    for (const part of text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const [name, count] = part.split('=');
      if (!QUEUE_NAMES.includes(name as QueueName) || !/^\d+$/.test(count ?? '')) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not queue=count with a queue of ${QUEUE_NAMES.join(', ')}` });
        continue;
      }
      result[name as QueueName] = Number(count);
    }
    return result;
  });

/** "15 * * * *" → { pattern }, "3600000" → { every } (BullMQ repeat options). */
const schedule = (fallback: string) =>
  z
    .string()
    .trim()
    .min(1)
    .default(fallback)
    .transform((text): { pattern: string } | { every: number } => (/^\d+$/.test(text) ? { every: Number(text) } : { pattern: text }));

const optionalUrl = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined))
  .pipe(z.url().optional());

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  PUBLIC_URL: optionalUrl,
  DATABASE_URL: optionalUrl,
  REDIS_URL: optionalUrl,
  TYPESENSE_URL: optionalUrl,
  TYPESENSE_API_KEY: z.string().optional(),
  /** The alias searches use; molvault creates versioned collections behind it. */
  TYPESENSE_COLLECTION: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, dash and underscore only')
    .default('molvault_structures'),
  /** Which index serves searches; default Typesense when TYPESENSE_URL is set, else Postgres. */
  SEARCH_BACKEND: z.enum(['postgres', 'typesense']).optional(),
  /**
   * Connections the Postgres backend searches on, per API process: as many as there are cores (at
   * least 2). Searches are CPU work, and more running at once than there are cores only makes each
   * wait longer: searches beyond them queue in arrival order instead of sharing the cores, which
   * trades a little throughput at full load for a shorter tail (bench:search; see bench/README.md).
   */
  SEARCH_CONNECTIONS: z.coerce.number().int().min(1).max(100).default(Math.max(2, os.availableParallelism())),
  /** How often the drift check compares the search index with Postgres. */
  SEARCH_DRIFT_EVERY_MS: z.coerce.number().int().positive().default(3_600_000),
  /** Structures whose documents the drift check compares each time. */
  SEARCH_DRIFT_SAMPLE: z.coerce.number().int().min(0).default(500),
  DATA_DIR: z.string().default(path.resolve('data')),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, dot, dash and underscore only')
    .default('molvault'),
  MAX_UPLOAD_BYTES: byteSize.default(2 * 1024 ** 3),
  MAX_EXPANDED_BYTES: byteSize.default(8 * 1024 ** 3),
  MAX_EXPANSION_RATIO: z.coerce.number().positive().default(200),
  DEFAULT_QUOTA_BYTES: byteSize.default(10 * 1024 ** 3),
  QUEUE_CONCURRENCY: concurrencyMap,
  PARSE_THREADS: z.coerce
    .number()
    .int()
    .min(1)
    // At least two: a thread waits on disk (fsync) as often as it parses, and one alone halves a bulk import.
    .default(Math.max(2, os.availableParallelism() - 1)),
  /**
   * How far below the API background work runs (a Linux nice value, 0–19): the parse threads always,
   * and a `molvault worker` process as a whole. Reads then stay quick while an import keeps every
   * core busy (bench:import measures reads during an import).
   */
  BACKGROUND_NICE: z.coerce.number().int().min(0).max(19).default(10),
  PARSE_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  PARSE_MAX_MEMORY_MB: z.coerce.number().int().positive().default(4096),
  /**
   * From this size on a PDB file's line scan is split between its parse thread and a helper thread
   * (0: never, the default). It saves wall time only where a core is idle, and costs memory and CPU
   * time (bench/README.md).
   */
  PDB_SPLIT_MIN_BYTES: byteSize.default(0),
  /**
   * Whether the API parses a large upload (4 MB or more, uncompressed) while its bytes arrive, in
   * its CPU pool, when a thread is free (api/intake/receipt.ts): the validate stage then finds it
   * done. Off, every upload is parsed by the validate stage after its ingest.
   */
  PARSE_ON_RECEIPT: z.enum(['true', 'false']).default('true'),
  /** Requests per user per minute on /v1 before 429; 0 turns the limit off. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  /**
   * A job whose worker stops renewing its lock for this long is handed to another worker. A live
   * worker renews every quarter to half of it, and parsing runs off its event loop, so only a
   * worker whose event loop stalls for about half of this loses a job it is still running (and
   * even then the handlers are idempotent). With the stalled check below, a killed worker's jobs
   * move on within this plus one check (bench:chaos measures it; bench/README.md has the figures).
   */
  WORKER_LOCK_MS: z.coerce.number().int().positive().default(5_000),
  /** How often workers look for such stalled jobs (one short script per queue, whichever worker runs it first). */
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().positive().default(2_500),
  /**
   * How many times a job may be found stalled (its worker died) before BullMQ fails it. Handlers
   * are idempotent, so a re-run is harmless; a stall-failed job is the infrastructure's, and
   * reconcile starts it again anyway.
   */
  WORKER_MAX_STALLED_COUNT: z.coerce.number().int().min(1).default(20),
  /**
   * How long a job keeps retrying a failure of the infrastructure (Postgres, Redis, the blob store,
   * a full disk, a killed engine) before it gives the job up to reconcile, which starts it again:
   * such a failure never ends a user's work as failed. Retries wait a doubling delay, at most
   * INFRA_RETRY_MAX_DELAY_MS.
   */
  INFRA_RETRY_FOR_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(48 * 3600 * 1000),
  INFRA_RETRY_BASE_DELAY_MS: z.coerce.number().int().positive().default(1_000),
  INFRA_RETRY_MAX_DELAY_MS: z.coerce.number().int().positive().default(60_000),
  /**
   * How often each worker process's watchdog (src/workers/watchdog.ts) checks whether Redis lost its
   * data (then reconcile re-adds the lost jobs at once), that the schedules still exist in Redis
   * (re-registering them after a FLUSHALL or a Redis restarted empty), and runs reconcile itself
   * when none has run for two RECONCILE_EVERY_MS. A check costs a Redis read or two and one small
   * query, so a loss waits at most this long to be found by a running worker (a starting one checks at once).
   */
  WATCHDOG_EVERY_MS: z.coerce.number().int().positive().default(5_000),
  /** How often the reconcile schedule looks for accepted uploads whose jobs Redis lost. */
  RECONCILE_EVERY_MS: z.coerce.number().int().positive().default(60_000),
  /** Uploads untouched for this long are considered for re-enqueueing. */
  RECONCILE_AFTER_MS: z.coerce.number().int().min(0).default(60_000),
  /** Structures stay in the trash this long before the cleanup schedule purges them. */
  TRASH_RETENTION_DAYS: z.coerce.number().min(0).default(30),
  /** Audit events older than this many days are deleted by the cleanup schedule (the only way they go). */
  AUDIT_RETENTION_DAYS: z.coerce.number().positive().default(365),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  /** The embedded Postgres's page cache (shared_buffers), in MB; default a quarter of the memory, at most 8 GB. */
  EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.coerce.number().int().min(16).optional(),
  ),
  /** Drafts not saved for this many days are deleted by the cleanup schedule. */
  DRAFT_RETENTION_DAYS: z.coerce.number().positive().default(30),
  /** Where backups go (default DATA_DIR/backups); best on another disk. */
  BACKUP_DIR: z.string().trim().optional(),
  /** When the backup job runs: a cron pattern (UTC), or "off". Default daily at 03:00. */
  BACKUP_SCHEDULE: z
    .string()
    .trim()
    .default('0 3 * * *')
    .refine((v) => v === 'off' || v.split(/\s+/).length >= 5, 'a cron pattern such as "0 3 * * *", or "off"'),
  /** Retention: the last N backups are kept, and every backup younger than D days. */
  BACKUP_KEEP_LAST: z.coerce.number().int().min(1).default(14),
  BACKUP_KEEP_DAYS: z.coerce.number().min(0).default(30),
  /** A warning (log, /readyz) when the disk under DATA_DIR has less free space than this or this share. */
  DISK_FREE_WARN_BYTES: byteSize.default(1024 ** 3),
  DISK_FREE_WARN_PERCENT: z.coerce.number().min(0).max(100).default(5),
  /** Below this free space where molvault keeps files, uploads and imports are refused (507 storage_full); 0 turns it off. */
  DISK_FREE_MIN_BYTES: byteSize.default(256 * 1024 ** 2),
  /** Work that met a full disk tries again after this long, for as long as it takes (never marked failed for it). */
  STORAGE_FULL_RETRY_MS: z.coerce.number().int().positive().default(30_000),
  /** How long the blob store scan for orphans (rows without files, files without rows) is reused. */
  STORAGE_SCAN_TTL_MS: z.coerce.number().int().min(0).default(600_000),
  /** Conversion engines: command names or paths; an engine that does not answer is reported as not installed. */
  GEMMI_BIN: z.string().default('gemmi'),
  OBABEL_BIN: z.string().default('obabel'),
  /** ChimeraX is used (and preferred for what it handles) only when this names its executable. */
  CHIMERAX_BIN: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : undefined)),
  /** Long-lived ChimeraX processes per worker, and jobs each one runs before it is replaced. */
  CHIMERAX_PROCESSES: z.coerce.number().int().min(1).default(1),
  CHIMERAX_JOBS_PER_PROCESS: z.coerce.number().int().min(1).default(100),
  CHIMERAX_START_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  /** Conversions running at once per worker process, over all engines. */
  ENGINE_CONCURRENCY: z.coerce.number().int().min(1).default(2),
  /** A conversion that takes longer is killed (its whole process tree) and fails. */
  ENGINE_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
  /** Maintenance schedules: a cron pattern ("15 * * * *") or a period in milliseconds ("3600000"). */
  CLEANUP_SCHEDULE: schedule('15 * * * *'),
  GC_SCHEDULE: schedule('45 3 * * *'),
  USAGE_SCHEDULE: schedule('30 2 * * *'),
  /** Where blobs and staged uploads live: `local` (DATA_DIR) or `s3` (an S3-compatible bucket shared by every host). */
  BLOB_STORE: z.enum(['local', 's3']).default('local'),
  /** The S3 server (Ceph RGW, MinIO, Garage: http(s)://host:port); AWS's regional endpoint when empty. */
  S3_ENDPOINT: z
    .string()
    .trim()
    .url()
    .optional()
    .or(z.literal('').transform(() => undefined)),
  S3_REGION: z.string().trim().default('us-east-1'),
  S3_BUCKET: z.string().trim().default('molvault'),
  /** Prepended to every key, so one bucket can hold several installations ("lab-a/"). */
  S3_PREFIX: z
    .string()
    .trim()
    .default('')
    .transform((v) => (v && !v.endsWith('/') ? `${v}/` : v)),
  S3_ACCESS_KEY_ID: z.string().trim().optional(),
  S3_SECRET_ACCESS_KEY: z.string().trim().optional(),
  /** Path-style URLs (http://host/bucket/key): needed by most servers that are not AWS. */
  S3_FORCE_PATH_STYLE: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  /** `1`: a download answers 302 to a short-lived presigned URL of the object store instead of streaming the bytes. */
  DOWNLOAD_REDIRECT: z
    .enum(['0', '1', 'true', 'false'])
    .default('0')
    .transform((v) => v === '1' || v === 'true'),
  /** How long a presigned download URL stays valid. */
  DOWNLOAD_REDIRECT_TTL: duration.default(300_000),
  /**
   * Small files of a multipart import staged together, one entry per chunk of files (auto: on an
   * object store, where every staged object costs requests; off on a local disk).
   */
  STAGING_BUNDLES: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Staging entries, blob-store temp files and scratch dirs untouched this long, with no live upload, are removed. */
  STAGING_MAX_AGE_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600_000),
  /** Uploads not finished this long after their last change are failed (their reservation and staging released). */
  STUCK_UPLOAD_AFTER_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600_000),
  /** Quota reservations older than this with no live upload (a crash while streaming) are released. */
  RESERVATION_MAX_AGE_MS: z.coerce.number().int().positive().default(3600_000),
  /** Unreferenced blobs (and blob files without a row) are deleted only after this long. */
  GC_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3600_000),
  GC_BATCH_SIZE: z.coerce.number().int().positive().default(500),
  /** How long a finished export archive can be downloaded before the cleanup schedule deletes it: 7d, 12h, 90m or ms. */
  EXPORT_RETENTION: duration.default(7 * 86_400_000),
  /** Files (archive entries, PDB ids) one bulk import may hold; more is refused as a whole. */
  IMPORT_MAX_ITEMS: z.coerce.number().int().min(1).default(10_000),
  /** Where PDB ids are fetched from: `{id}` is replaced by the id (1CRN, pdb_00001crn). */
  PDB_MIRROR_URL: z
    .string()
    .trim()
    .default('https://files.rcsb.org/download/{id}.cif.gz')
    .refine((v) => v.includes('{id}') && /^https?:\/\//.test(v), 'an http(s) URL containing {id}'),
  /** A PDB fetch that receives nothing (headers or body) for this long is abandoned (and retried). */
  PDB_FETCH_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  /** Attempts per PDB id for network errors, timeouts, 5xx and 429 (a 404 is not retried). */
  PDB_FETCH_ATTEMPTS: z.coerce.number().int().min(1).default(4),
  /** First pause between attempts; it doubles each time. */
  PDB_FETCH_BACKOFF_MS: z.coerce.number().int().min(0).default(1000),
  /** PDB fetches at once per worker process. */
  PDB_FETCH_CONCURRENCY: z.coerce.number().int().min(1).default(4),
  /** Web app origins allowed to call /v1 from a browser with a bearer token (comma-separated, e.g. https://viewer.lab.org). */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((text) =>
      text
        .split(',')
        .map((s) => s.trim().replace(/\/+$/, ''))
        .filter(Boolean),
    ),
  /**
   * Keys that sign download URLs, `kid:secret,kid:secret` (a secret of at least 32 characters); the
   * first signs, every one verifies, so a key is rotated by putting a new one first and dropping the
   * old one once its URLs have expired. Without any, molvault generates one and keeps it in Postgres.
   */
  SIGNING_KEYS: z
    .string()
    .default('')
    .transform((text, ctx) =>
      text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .flatMap((part) => {
          const match = /^((?!db-)[A-Za-z0-9_-]{1,32}):(.{32,})$/.exec(part);
          if (!match) {
            ctx.addIssue({
              code: 'custom',
              message:
                'each key is kid:secret: the kid letters, digits, dash or underscore (not starting db-, which names generated keys), the secret 32 characters or more',
            });
            return [];
          }
          return [{ kid: match[1], secret: match[2] }];
        }),
    ),
  /** The longest a signed download URL may live (default 7 days): 7d, 12h, 90m or ms. */
  SIGNED_URL_MAX_TTL: duration.default(7 * 86_400_000),
  /** The longest a share link may live (default 30 days), and whether one may never expire. */
  SHARE_LINK_MAX_TTL: duration.default(30 * 86_400_000),
  SHARE_LINK_ALLOW_NEVER: z.enum(['true', 'false']).default('false'),
});

export type Config = ReturnType<typeof buildConfig>;

const DEFAULT_CONCURRENCY: Record<QueueName, number> = { ingest: 4, validate: 2, snapshot: 4, index: 4, cleanup: 1, diff: 2, backup: 1, convert: 2, export: 2 };

function buildConfig(env: z.infer<typeof envSchema>) {
  const dataDir = path.resolve(env.DATA_DIR);
  return {
    env: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    host: env.HOST,
    port: env.PORT,
    publicUrl: env.PUBLIC_URL,
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    typesense: env.TYPESENSE_URL ? { url: env.TYPESENSE_URL, apiKey: env.TYPESENSE_API_KEY ?? '', collection: env.TYPESENSE_COLLECTION } : undefined,
    searchBackend: env.SEARCH_BACKEND ?? (env.TYPESENSE_URL ? 'typesense' : 'postgres'),
    searchConnections: env.SEARCH_CONNECTIONS,
    searchDriftEveryMs: env.SEARCH_DRIFT_EVERY_MS,
    searchDriftSample: env.SEARCH_DRIFT_SAMPLE,
    dataDir,
    stagingDir: path.join(dataDir, 'staging'),
    blobDir: path.join(dataDir, 'blobs'),
    queuePrefix: env.QUEUE_PREFIX,
    blobStore: env.BLOB_STORE,
    s3: {
      endpoint: env.S3_ENDPOINT,
      region: env.S3_REGION,
      bucket: env.S3_BUCKET,
      prefix: env.S3_PREFIX,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
      forcePathStyle: env.S3_FORCE_PATH_STYLE,
    },
    downloadRedirect: env.DOWNLOAD_REDIRECT,
    downloadRedirectTtlMs: env.DOWNLOAD_REDIRECT_TTL,
    maxUploadBytes: env.MAX_UPLOAD_BYTES,
    maxExpandedBytes: env.MAX_EXPANDED_BYTES,
    maxExpansionRatio: env.MAX_EXPANSION_RATIO,
    defaultQuotaBytes: env.DEFAULT_QUOTA_BYTES,
    concurrency: { ...DEFAULT_CONCURRENCY, ...env.QUEUE_CONCURRENCY } as Record<QueueName, number>,
    parseThreads: env.PARSE_THREADS,
    backgroundNice: env.BACKGROUND_NICE,
    parseTimeoutMs: env.PARSE_TIMEOUT_MS,
    parseMaxMemoryMb: env.PARSE_MAX_MEMORY_MB,
    pdbSplitMinBytes: env.PDB_SPLIT_MIN_BYTES,
    parseOnReceipt: env.PARSE_ON_RECEIPT === 'true',
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    workerLockMs: env.WORKER_LOCK_MS,
    workerStalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    workerMaxStalledCount: env.WORKER_MAX_STALLED_COUNT,
    infraRetryForMs: env.INFRA_RETRY_FOR_MS,
    infraRetryBaseDelayMs: env.INFRA_RETRY_BASE_DELAY_MS,
    infraRetryMaxDelayMs: env.INFRA_RETRY_MAX_DELAY_MS,
    watchdogEveryMs: env.WATCHDOG_EVERY_MS,
    reconcileEveryMs: env.RECONCILE_EVERY_MS,
    reconcileAfterMs: env.RECONCILE_AFTER_MS,
    trashRetentionDays: env.TRASH_RETENTION_DAYS,
    auditRetentionDays: env.AUDIT_RETENTION_DAYS,
    embeddedPostgresPort: env.EMBEDDED_POSTGRES_PORT,
    embeddedPostgresSharedBuffersMb: env.EMBEDDED_POSTGRES_SHARED_BUFFERS_MB,
    draftRetentionDays: env.DRAFT_RETENTION_DAYS,
    backupDir: env.BACKUP_DIR ? path.resolve(env.BACKUP_DIR) : path.join(dataDir, 'backups'),
    backupSchedule: env.BACKUP_SCHEDULE,
    backupKeepLast: env.BACKUP_KEEP_LAST,
    backupKeepDays: env.BACKUP_KEEP_DAYS,
    diskFreeWarnBytes: env.DISK_FREE_WARN_BYTES,
    diskFreeWarnPercent: env.DISK_FREE_WARN_PERCENT,
    diskFreeMinBytes: env.DISK_FREE_MIN_BYTES,
    storageFullRetryMs: env.STORAGE_FULL_RETRY_MS,
    storageScanTtlMs: env.STORAGE_SCAN_TTL_MS,
    engines: {
      gemmiBin: env.GEMMI_BIN,
      obabelBin: env.OBABEL_BIN,
      chimeraxBin: env.CHIMERAX_BIN,
      chimeraxProcesses: env.CHIMERAX_PROCESSES,
      chimeraxJobsPerProcess: env.CHIMERAX_JOBS_PER_PROCESS,
      chimeraxStartTimeoutMs: env.CHIMERAX_START_TIMEOUT_MS,
      concurrency: env.ENGINE_CONCURRENCY,
      timeoutMs: env.ENGINE_TIMEOUT_MS,
      // Apart from upload staging, whose entries are upload ids.
      scratchDir: path.join(dataDir, 'scratch'),
    },
    /** Per-job scratch directories of the engines (DATA_DIR/scratch/<job>), swept by cleanup. */
    scratchDir: path.join(dataDir, 'scratch'),
    schedules: { cleanup: env.CLEANUP_SCHEDULE, gc: env.GC_SCHEDULE, usage: env.USAGE_SCHEDULE },
    stagingMaxAgeMs: env.STAGING_MAX_AGE_MS,
    stagingBundles: env.STAGING_BUNDLES,
    stuckUploadAfterMs: env.STUCK_UPLOAD_AFTER_MS,
    reservationMaxAgeMs: env.RESERVATION_MAX_AGE_MS,
    gcGraceMs: env.GC_GRACE_MS,
    gcBatchSize: env.GC_BATCH_SIZE,
    exportRetentionMs: env.EXPORT_RETENTION,
    corsOrigins: env.CORS_ORIGINS,
    sharing: {
      signingKeys: env.SIGNING_KEYS,
      signedUrlMaxTtlMs: env.SIGNED_URL_MAX_TTL,
      shareLinkMaxTtlMs: env.SHARE_LINK_MAX_TTL,
      shareLinkAllowNever: env.SHARE_LINK_ALLOW_NEVER === 'true',
    },
    imports: {
      maxItems: env.IMPORT_MAX_ITEMS,
      pdbMirrorUrl: env.PDB_MIRROR_URL,
      pdbFetchTimeoutMs: env.PDB_FETCH_TIMEOUT_MS,
      pdbFetchAttempts: env.PDB_FETCH_ATTEMPTS,
      pdbFetchBackoffMs: env.PDB_FETCH_BACKOFF_MS,
      pdbFetchConcurrency: env.PDB_FETCH_CONCURRENCY,
    },
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`molvault cannot start, its configuration is wrong:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; the only place in molvault that reads process.env. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`));
  }
  if (result.data.SEARCH_BACKEND === 'typesense' && !result.data.TYPESENSE_URL) {
    throw new ConfigError(['SEARCH_BACKEND: typesense needs TYPESENSE_URL (and TYPESENSE_API_KEY)']);
  }
  return { ...buildConfig(result.data), ...overrides };
}
