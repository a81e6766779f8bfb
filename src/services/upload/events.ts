import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import type { Logger } from '../../lib/logger.js';

const CHANNEL = 'molvault_upload';

/** Tells listeners (an API waiting on `Prefer: wait`) that an upload moved on. Works across processes. */
export async function notifyUploadChanged(em: EntityManager, uploadId: string): Promise<void> {
  await em.execute(`select pg_notify('${CHANNEL}', ?)`, [uploadId]);
}

/**
 * One LISTEN connection per API process, opened on first use. Waiters wake on a notification for
 * their upload, or after `maxWaitMs` anyway, so a lost notification costs latency, never correctness.
 */
export class UploadEvents {
  private client?: pg.Client;
  private connecting?: Promise<void>;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {}

  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.databaseUrl });
      client.on('notification', (message) => {
        for (const wake of this.waiters.get(message.payload ?? '') ?? []) wake();
      });
      client.on('error', (error) => {
        this.log.warn({ err: error }, 'upload event listener lost its connection; waiting falls back to polling');
        this.client = undefined;
        this.connecting = undefined;
      });
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
      this.client = client;
    })().catch((error) => {
      this.log.warn({ err: error }, 'could not listen for upload events; waiting falls back to polling');
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Resolves when the upload may have changed, or after maxWaitMs. */
  async wait(uploadId: string, maxWaitMs: number): Promise<void> {
    await this.connect();
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(uploadId) ?? new Set();
      this.waiters.set(uploadId, set);
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(uploadId);
        resolve();
      };
      const timer = setTimeout(wake, maxWaitMs);
      set.add(wake);
    });
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    const client = this.client;
    this.client = undefined;
    this.connecting = undefined;
    await client?.end().catch(() => {});
  }
}
