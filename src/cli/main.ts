import os from 'node:os';
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig, parseByteSize, QUEUE_NAMES, type QueueName } from '../config/index.js';
import type { Orm } from '../db/orm.js';
import { routeConsoleToLog } from '../lib/consoleLog.js';
import { createLogger, type Logger } from '../lib/logger.js';
import type { Services } from '../runtime/bootstrap.js';
import { lowerPriority } from '../runtime/priority.js';
import type { AuditEntry } from '../services/audit/audit.js';
import type { TokenScope } from '../services/auth/grant.js';
import { otherServerProblem } from './otherServer.js';

// Each command loads only the code it runs (a dynamic import where it is used): a worker process
// restarted after a crash is taking jobs again sooner when it does not first load the HTTP API,
// the backup service or the search maintenance code (loading modules is most of a start's CPU).

const USAGE = `molvault — storage for molecular structures

Usage:
  molvault start                     API, workers and console in one process (embedded services when none are configured)
  molvault api                       the HTTP API only
  molvault worker [--queues a,b]     job workers (default: all queues: ${QUEUE_NAMES.join(', ')})
  molvault migrate                   apply database migrations
  molvault version                   the Node.js version and whether the build (dist/) or the sources run
  molvault reindex [--backend postgres|typesense]
                                     rebuild the search index from Postgres (default: the configured backend)
  molvault user create --email E [--name N] [--admin] [--quota 10GB]
  molvault token create --email E [--name N] [--expires 30d] [--scopes read|read,write] [--projects ID,ID]
  molvault backup create             a backup now (database + blobs, incremental) into BACKUP_DIR
  molvault backup list [--json]      the backups in BACKUP_DIR (read from their manifests)
  molvault backup verify <id>|--latest     check every checksum and that the dump restores
  molvault backup restore <id>|--latest [--force]   into DATABASE_URL and DATA_DIR
  molvault blobs migrate --to s3|local   copy every blob into that store, verify each, then switch to it (resumable)
  molvault cleanup [--dry-run]       stale staging, stuck uploads, reservations, orphaned blobs now (--dry-run: report only)
  molvault import DIR|ARCHIVE --project NAME [--server URL] [--token T] [--create-project] [--tags a,b] [--json]
                                     send a folder or an archive to a molvault server; resumable (molvault import --help)

Configuration comes from the environment: DATABASE_URL, REDIS_URL, DATA_DIR, PORT, HOST, QUEUE_PREFIX,
MAX_UPLOAD_BYTES, QUEUE_CONCURRENCY (e.g. ingest=4,validate=2), PARSE_THREADS, LOG_LEVEL.`;

class UsageError extends Error {}
/** A one-shot command pointed at no database, or beside another molvault's: said, with exit code 2. */
class WrongDataDir extends Error {}

function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match) throw new UsageError(`"${text}" is not a duration; try 30d, 12h or 90m`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(match[1]) * unit * 1000;
}

function print(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Runs `body` with services up and a migrated database, and shuts them down after. */
async function withServices<T>(config: Config, log: Logger, body: (services: Services) => Promise<T>, options: { migrate?: boolean } = {}): Promise<T> {
  const problem = await otherServerProblem(config);
  if (problem) throw new WrongDataDir(problem);
  const { bootstrapServices } = await import('../runtime/bootstrap.js');
  const services = await bootstrapServices(config, log, { redis: false, ...options });
  try {
    return await body(services);
  } finally {
    await services.stop();
  }
}

/**
 * How long a server started while Postgres does not answer (an embedded one restarting, a database
 * host rebooting) waits for it before it exits (and its supervisor, systemd, starts it again).
 */
const SERVER_DATABASE_WAIT_MS = 5 * 60_000;

async function runServer(role: 'start' | 'api' | 'worker', config: Config, log: Logger, queues: QueueName[]) {
  // What this role runs, and nothing else.
  const [{ bootstrapServices }, { closeAppContext, createAppContext }, apiModule, workersModule] = await Promise.all([
    import('../runtime/bootstrap.js'),
    import('../runtime/context.js'),
    role !== 'worker' ? import('../api/server.js') : undefined,
    role !== 'api' ? import('../workers/main.js') : undefined,
  ]);
  const services = await bootstrapServices(config, log, { migrate: role === 'start', waitForDatabaseMs: SERVER_DATABASE_WAIT_MS });
  const ctx = await createAppContext({ ...config, databaseUrl: services.databaseUrl, redisUrl: services.redisUrl }, log);
  const api = apiModule ? await apiModule.startApiServer(ctx) : undefined;
  const workers = workersModule ? await workersModule.startWorkers(ctx, queues) : undefined;
  // A worker process is background work, but it starts at normal priority: a worker restarted after
  // a crash, under the very load it is to take on, would otherwise be starved while it loads its
  // code and connects, for many times its start's CPU. Its jobs run lowered (the parse threads lower
  // themselves once loaded).
  if (role === 'worker' && config.backgroundNice > 0) {
    try {
      lowerPriority(config.backgroundNice);
    } catch (error) {
      log.warn({ err: error }, 'could not lower the worker process priority');
    }
  }
  if (role === 'start' && api) await welcome(ctx.orm, `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${api.port}`, config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing active jobs');
    await Promise.all([api?.close(), workers?.close()]);
    await closeAppContext(ctx);
    await services.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** On a first start with no users, create an admin and show its token once. */
async function welcome(orm: Orm, url: string, config: Config) {
  const [{ User }, { createToken, createUser }] = await Promise.all([import('../entities/User.js'), import('../services/auth/auth.js')]);
  const em = orm.em.fork();
  if ((await em.count(User, {})) > 0) {
    process.stdout.write(`\nmolvault is running at ${url}  (API docs ${url}/docs, queues ${url}/admin/queues)\n\n`);
    return;
  }
  const user = await createUser(em, { email: 'admin@localhost', name: 'Administrator', role: 'admin', quotaBytes: config.defaultQuotaBytes });
  const { token } = await createToken(em, user.id, { name: 'first start' });
  process.stdout.write(
    [
      '',
      `molvault is running at ${url}`,
      '',
      '  An administrator was created (admin@localhost). Its API token, shown only this once:',
      '',
      `    ${token}`,
      '',
      `  API docs:      ${url}/docs`,
      `  Queue console: ${url}/admin/queues   (user: anything, password: the token)`,
      `  Try:           curl -H "Authorization: Bearer ${token}" ${url}/v1/projects`,
      '',
      '',
    ].join('\n'),
  );
}

export async function main(argv: string[]): Promise<void> {
  const [command, sub, ...rest] = argv;
  // A client of a server somewhere: it needs none of the server's configuration.
  if (command === 'import') {
    const { importCommand } = await import('./import.js');
    process.exitCode = await importCommand(argv.slice(1));
    return;
  }
  if (command === 'version') {
    const { codeSource } = await import('../lib/codeSource.js');
    print({ node: process.versions.node, ...codeSource() });
    return;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const oneShot = command !== 'start' && command !== 'api' && command !== 'worker';
  const log = createLogger(oneShot && config.logLevel === 'info' ? 'warn' : config.logLevel, { stderr: oneShot });
  routeConsoleToLog(log);
  try {
    switch (command) {
      case 'start':
      case 'api':
        await runServer(command, config, log, [...QUEUE_NAMES]);
        return;
      case 'worker': {
        const { values } = parseArgs({ args: [sub, ...rest].filter(Boolean) as string[], options: { queues: { type: 'string' } } });
        const queues = values.queues ? values.queues.split(',').map((q) => q.trim()) : [...QUEUE_NAMES];
        const unknown = queues.filter((q) => !QUEUE_NAMES.includes(q as QueueName));
        if (unknown.length) throw new UsageError(`unknown queue(s): ${unknown.join(', ')}; the queues are ${QUEUE_NAMES.join(', ')}`);
        await runServer('worker', config, log, queues as QueueName[]);
        return;
      }
      case 'migrate':
        await withServices(config, log, async ({ databaseUrl }) => {
          const { connectOrm, migrateReport } = await import('../db/orm.js');
          const orm = await connectOrm(databaseUrl, log);
          try {
            const report = await migrateReport(orm);
            print(report);
            process.stderr.write(`molvault: ${report.message}\n`);
          } finally {
            await orm.close();
          }
        });
        return;
      case 'reindex': {
        const { values } = parseArgs({ args: [sub, ...rest].filter(Boolean) as string[], options: { backend: { type: 'string' } } });
        const backend = values.backend ?? config.searchBackend;
        if (backend !== 'postgres' && backend !== 'typesense') throw new UsageError(`--backend must be postgres or typesense, not "${backend}"`);
        if (backend === 'typesense' && !config.typesense) throw new UsageError('--backend typesense needs TYPESENSE_URL (and TYPESENSE_API_KEY)');
        await withServices(config, log, async ({ databaseUrl }) => {
          const [{ connectOrm }, { createSearchIndex }, { reindexAll }, { progressBar }] = await Promise.all([
            import('../db/orm.js'),
            import('../search/create.js'),
            import('../services/search/maintenance.js'),
            import('./progress.js'),
          ]);
          const orm = await connectOrm(databaseUrl, log);
          const index = await createSearchIndex(config, orm, log, backend);
          try {
            await index.prepare();
            const bar = progressBar(`reindexing into ${backend}:`);
            const started = Date.now();
            const result = await reindexAll(orm.em.fork(), index, ({ done, total }) => bar.update(done, total));
            bar.finish();
            print({ backend, ...result, seconds: Math.round((Date.now() - started) / 100) / 10 });
          } finally {
            await index.close();
            await orm.close();
          }
        });
        return;
      }
      case 'user':
      case 'token': {
        if (sub !== 'create') throw new UsageError(`unknown command: ${command} ${sub ?? ''}`);
        const { values } = parseArgs({
          args: rest,
          options: {
            email: { type: 'string' },
            name: { type: 'string' },
            admin: { type: 'boolean', default: false },
            quota: { type: 'string' },
            expires: { type: 'string' },
            scopes: { type: 'string' },
            projects: { type: 'string' },
          },
        });
        const listed = (text: string | undefined) =>
          text
            ?.split(',')
            .map((v) => v.trim())
            .filter(Boolean);
        const scopes = listed(values.scopes);
        const { TOKEN_SCOPES } = await import('../services/auth/grant.js');
        if (scopes && (!scopes.includes('read') || scopes.some((s) => !(TOKEN_SCOPES as readonly string[]).includes(s)))) {
          throw new UsageError('--scopes is "read" or "read,write"');
        }
        const projectIds = listed(values.projects);
        if (projectIds?.some((id) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))) {
          throw new UsageError('--projects is a comma-separated list of project ids (UUIDs)');
        }
        if (!values.email) throw new UsageError('--email is required');
        const email = values.email;
        await withServices(config, log, async ({ databaseUrl }) => {
          const [{ connectOrm }, { ApiToken }, { User }, { recordAudit }, { createToken, createUser, serializeUser }] = await Promise.all([
            import('../db/orm.js'),
            import('../entities/ApiToken.js'),
            import('../entities/User.js'),
            import('../services/audit/audit.js'),
            import('../services/auth/auth.js'),
          ]);
          const orm = await connectOrm(databaseUrl, log);
          try {
            const em = orm.em.fork();
            if (command === 'user') {
              const quotaBytes = values.quota ? parseByteSize(values.quota) : config.defaultQuotaBytes;
              if (quotaBytes === undefined) throw new UsageError(`"${values.quota}" is not a size; try 10GB`);
              if (await em.findOne(User, { email: email.toLowerCase() })) throw new UsageError(`a user with email ${email} exists already`);
              const user = await createUser(em, { email, name: values.name, role: values.admin ? 'admin' : 'user', quotaBytes });
              const { token, id } = await createToken(em, user.id, { name: 'created with the user' });
              await recordAudit(em, fromCli({ action: 'admin.user.create', targetType: 'user', targetId: user.id, details: { role: user.role, quotaBytes } }));
              await recordAudit(em, fromCli({ action: 'token.create', targetType: 'token', targetId: id, details: { userId: user.id } }));
              print({ user: serializeUser(user), token });
            } else {
              const user = await em.findOne(User, { email: email.toLowerCase() });
              if (!user) throw new UsageError(`no user has the email ${email}`);
              const expiresAt = values.expires ? new Date(Date.now() + parseDuration(values.expires)) : undefined;
              const { token, id } = await createToken(em, user.id, {
                name: values.name,
                expiresAt,
                scopes: scopes as TokenScope[] | undefined,
                projectIds: projectIds ?? null,
              });
              const row = await em.findOneOrFail(ApiToken, { id });
              await recordAudit(
                em,
                fromCli({
                  action: 'token.create',
                  targetType: 'token',
                  targetId: id,
                  details: { userId: user.id, scopes: row.scopes ?? null, projectIds: row.projectIds ?? null },
                }),
              );
              print({ token, id, expiresAt: row.expiresAt?.toISOString() ?? null, scopes: row.scopes ?? null, projectIds: row.projectIds ?? null });
            }
          } finally {
            await orm.close();
          }
        });
        return;
      }
      case 'backup':
        await backupCommand(config, log, sub, rest);
        return;
      case 'blobs': {
        if (sub !== 'migrate') throw new UsageError(`unknown command: blobs ${sub ?? ''}; try blobs migrate --to s3|local`);
        const { values } = parseArgs({ args: rest, options: { to: { type: 'string' } } });
        if (values.to !== 's3' && values.to !== 'local') throw new UsageError('blobs migrate needs --to s3 or --to local');
        const to = values.to;
        const report = await withServices(config, log, async ({ databaseUrl }) => {
          const [{ connectOrm }, { migrateBlobs }] = await Promise.all([import('../db/orm.js'), import('../services/blobs/migrate.js')]);
          const orm = await connectOrm(databaseUrl, log);
          try {
            return await migrateBlobs({ execute: (sql, params) => orm.em.fork().getConnection().execute(sql, params), config, log }, to);
          } finally {
            await orm.close();
          }
        });
        print(report);
        if (!report.switched) {
          process.stderr.write(
            `molvault: not switched to ${to}: ${report.missing.length} blob(s) missing, ${report.failed.length} failed; fix them and run it again (it resumes)\n`,
          );
          process.exitCode = 1;
        } else process.stderr.write(`molvault: every blob is verified in ${to}; set BLOB_STORE=${to} on every host and restart\n`);
        return;
      }
      case 'cleanup': {
        const { values } = parseArgs({ args: [sub, ...rest].filter(Boolean) as string[], options: { 'dry-run': { type: 'boolean', default: false } } });
        const problem = await otherServerProblem(config);
        if (problem) throw new WrongDataDir(problem);
        const { cleanupCommand } = await import('./cleanup.js');
        print(await cleanupCommand(config, log, { dryRun: values['dry-run'] ?? false }));
        return;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return;
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    // BackupRefused (backup/service.ts) by name: this module does not load the backup service unless a backup command runs.
    if ((error as Error)?.name === 'BackupRefused' || error instanceof WrongDataDir) {
      process.stderr.write(`molvault: ${(error as Error).message}\n`);
      process.exit(2);
    }
    if (error instanceof UsageError) {
      process.stderr.write(`molvault: ${error.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`molvault: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

async function backupCommand(config: Config, log: Logger, sub: string | undefined, args: string[]) {
  const { createBackup, listBackups, resolveBackupId, restoreBackup, verifyBackup } = await import('../backup/service.js');
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, latest: { type: 'boolean', default: false }, force: { type: 'boolean', default: false } },
  });
  const target = async () => {
    if (values.latest === (positionals[0] !== undefined)) throw new UsageError(`backup ${sub} takes a backup id or --latest`);
    return resolveBackupId(config.backupDir, values.latest ? 'latest' : (positionals[0] as string));
  };
  switch (sub) {
    case 'list': {
      // The manifests on disk are the record: this works with the database gone.
      const backups = await listBackups(config.backupDir);
      if (values.json) return print(backups);
      if (!backups.length) return void process.stdout.write(`no backups in ${config.backupDir}\n`);
      for (const b of backups) {
        process.stdout.write(
          `${b.id}  ${b.kind.padEnd(13)} ${b.state.padEnd(8)} ${formatBytes(b.sizeBytes).padStart(10)} new  ${String(b.blobCount).padStart(7)} blobs  ${b.rows} rows\n`,
        );
      }
      return;
    }
    case 'create':
      return withServices(config, log, async ({ databaseUrl }) => {
        const summary = await createBackup({ config, databaseUrl, log }, { kind: 'manual' });
        await auditAtCommandLine(databaseUrl, log, { action: 'admin.backup.create', targetType: 'backup', targetId: summary.id });
        print(summary);
      });
    case 'verify': {
      const id = await target();
      const report = await withServices(config, log, ({ databaseUrl }) => verifyBackup({ config, databaseUrl, log }, id), { migrate: false });
      print(report);
      if (!report.ok) process.exitCode = 1;
      return;
    }
    case 'restore': {
      const id = await target();
      return withServices(
        config,
        log,
        async ({ databaseUrl }) => {
          const report = await restoreBackup({ config, databaseUrl, log }, id, { force: values.force });
          // Recorded in the restored database: the record of the restore lives with what it restored.
          await auditAtCommandLine(databaseUrl, log, {
            action: 'admin.backup.restore',
            targetType: 'backup',
            targetId: id,
            details: { force: values.force },
          }).catch((error: Error) => log.error({ err: error }, 'the backup was restored, but its audit entry could not be written'));
          print(report);
        },
        { migrate: false },
      );
    }
    default:
      throw new UsageError(`unknown command: backup ${sub ?? ''}; try backup create, list, verify or restore`);
  }
}

/**
 * An audit entry for an administrator's action at the command line: no user, token or link acted;
 * the operating-system account and host stand where a request's user agent would.
 */
function fromCli(entry: Omit<AuditEntry, 'actor' | 'origin'>): AuditEntry {
  return {
    ...entry,
    actor: {},
    origin: { userAgent: `molvault command line (${os.userInfo().username}@${os.hostname()})` },
    details: { ...entry.details, via: 'command line' },
  };
}

async function auditAtCommandLine(databaseUrl: string, log: Logger, entry: Omit<AuditEntry, 'actor' | 'origin'>): Promise<void> {
  const [{ connectOrm }, { recordAudit }] = await Promise.all([import('../db/orm.js'), import('../services/audit/audit.js')]);
  const orm = await connectOrm(databaseUrl, log);
  try {
    await recordAudit(orm.em.fork(), fromCli(entry));
  } finally {
    await orm.close();
  }
}
