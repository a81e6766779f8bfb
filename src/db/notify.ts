import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import type { Logger } from '../lib/logger.js';

/**
 * The NOTIFY channel on which work that someone may be waiting for (an upload, a conversion job, an
 * export) says it moved on; the payload is its id. The name predates conversions and exports and is
 * kept, so processes of two releases still hear each other.
 */
export const WORK_EVENTS_CHANNEL = 'molvault_upload';

/** Tells listeners (an API waiting on `Prefer: wait`) that these uploads, jobs or exports moved on. Works across processes. */
export async function notifyWorkChanged(em: EntityManager, ids: string | readonly string[]): Promise<void> {
  if (typeof ids === 'string') {
    await em.execute('select pg_notify(?, ?)', [WORK_EVENTS_CHANNEL, ids]);
    return;
  }
  if (ids.length === 0) return;
  await em.execute('select pg_notify(?, id) from jsonb_array_elements_text(?::jsonb) as id', [WORK_EVENTS_CHANNEL, JSON.stringify(ids)]);
}

/**
 * One LISTEN connection per process, opened on first use. Waiters wake on a notification for the
 * id they wait on (an upload, a conversion job, an export), or after `maxWaitMs` anyway, so a lost
 * notification costs latency, never correctness.
 */
export class WorkEvents {
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
        this.log.warn({ err: error }, 'work event listener lost its connection; waiting falls back to polling');
        this.client = undefined;
        this.connecting = undefined;
      });
      await client.connect();
      await client.query(`listen ${WORK_EVENTS_CHANNEL}`);
      this.client = client;
    })().catch((error) => {
      this.log.warn({ err: error }, 'could not listen for work events; waiting falls back to polling');
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Resolves when the work with this id may have changed, or after maxWaitMs. */
  async wait(id: string, maxWaitMs: number): Promise<void> {
    await this.connect();
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(id);
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
